"""``cosim optimize``: every policy on the scenario's radio and measured costs (tiny model)."""

import json

from cosim.cli import main
from cosim.radio import equal_subchannels

TINY = ["--set", "model.name=tiny-llama", "--set", "split.cut_layer=2", "--set", "data.test_size=8",
        "--set", "data.max_train=50", "--set", "training.seq_len=32", "--set", "lora.rank=8"]


def test_optimize_reports_every_policy_and_the_optimizer_wins(tmp_path, capsys):
    profile = tmp_path / "profile.json"
    assert main(["profile", "scenarios/quickstart.yaml", *TINY, "--cuts", "1,2,3", "--ranks", "4,8",
                 "--out", str(profile)]) == 0
    out = tmp_path / "decisions.json"
    assert main(["optimize", "scenarios/quickstart.yaml", *TINY, "--profile", str(profile),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())["policies"]
    assert set(result) == {"optimizer", "equal", "random", "resources_only", "split_rank_only"}
    for name in result:
        assert name in printed
    best = result["optimizer"]["total_delay_s"]
    assert all(best <= p["total_delay_s"] * (1 + 1e-9) for p in result.values())
    for name in ("equal", "random", "resources_only"):
        assert (result[name]["cut"], result[name]["rank"]) == (2, 8)
    assert sorted(result["equal"]["subchannels_per_client"]) == sorted(len(s) for s in equal_subchannels(4, 50))
    for p in result.values():
        assert sum(p["subchannels_per_client"]) <= 50 and min(p["subchannels_per_client"]) >= 1
        assert max(p["power_w_per_client"]) <= 10 ** ((23 - 30) / 10) * (1 + 1e-9)
    # allocation.power: full (the default), as the run applies it: every device at its whole budget
    # under power control, the slowest alone finishing at the round delay.
    for name in ("optimizer", "resources_only"):
        p = result[name]
        assert min(p["power_w_per_client"]) >= 10 ** ((23 - 30) / 10) * (1 - 1e-9)
        assert max(p["client_delay_s"]) == p["round_delay_s"]
        assert sum(d < p["round_delay_s"] * (1 - 1e-6) for d in p["client_delay_s"]) == 3


def test_optimize_refuses_a_table_without_the_scenario_cut(tmp_path, capsys):
    code = main(["optimize", "scenarios/quickstart.yaml", *TINY, "--cuts", "1,3", "--ranks", "8"])
    assert code == 2
    assert "lacks the scenario's split.cut_layer=2" in capsys.readouterr().err
