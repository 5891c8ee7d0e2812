"""``cosim optimize``: every policy on the scenario's radio and measured costs (tiny model)."""

import json

import numpy as np
import pytest

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


# --- honest tables: what is predicted, what is realised, where rounds(rank) come from ------------------------

SMALL = [*TINY[:-2], "--set", "lora.rank=4", "--set", "clients.count=2", "--set", "training.local_iterations=2",
         "--set", "compute.client_flops_per_s=1e12"]
STATIC = ["--set", "channel.fading=none", "--set", "channel.shadowing_std_db=0", "--set", "clients.placement=fixed",
          "--set", "clients.distances_m=[120, 300]"]


@pytest.fixture(scope="module")
def piloted(tmp_path_factory):
    """Cuts 1, 2 x ranks 2, 4, 8 with a 2-round pilot at ranks 2 and 8 (rank 4 is never piloted)."""
    path = tmp_path_factory.mktemp("opt") / "profile.json"
    assert main(["profile", "scenarios/quickstart.yaml", *SMALL, "--cuts", "1,2", "--ranks", "2,4,8",
                 "--pilot-rounds", "2", "--pilot-ranks", "2,8", "--out", str(path)]) == 0
    return path


def test_predictions_are_labelled_and_knowledge_is_the_scenarios(piloted, tmp_path, capsys):
    out = tmp_path / "d.json"
    capsys.readouterr()
    assert main(["optimize", "scenarios/quickstart.yaml", *SMALL, "--profile", str(piloted), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert json.loads(out.read_text())["knowledge"] == "current"          # quickstart: allocation.knowledge default
    head = next(line for line in printed.splitlines() if line.startswith("policy"))
    assert "# knowledge: current" in printed and head.split()[3:6] == ["predicted", "rounds", "predicted"]
    assert "realised" not in printed                                      # nothing replayed without --check
    assert main(["optimize", "scenarios/quickstart.yaml", *SMALL, "--set", "allocation.knowledge=average",
                 "--profile", str(piloted), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["knowledge"] == "average"


def test_rounds_per_rank_say_where_they_come_from(piloted, tmp_path, capsys):
    out = tmp_path / "d.json"
    assert main(["optimize", "scenarios/quickstart.yaml", *SMALL, "--profile", str(piloted), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    source = json.loads(out.read_text())["rounds_source"]
    assert source["4"]["how"] == "interpolated" and source["2"]["how"] in ("measured", "extrapolated", "capped")
    lo, hi = source["2"]["rounds"], source["8"]["rounds"]
    assert source["4"]["rounds"] == int(np.ceil(lo + 0.5 * (hi - lo) - 1e-9))   # log2 4 is halfway from 2 to 8
    assert f"rank    4: {source['4']['rounds']:>4} rounds, interpolated (log2-linear between ranks 2" in printed
    assert "tolerance" in printed                                        # the target says what was used


def test_check_replays_each_policy_beside_its_prediction(piloted, tmp_path, capsys):
    out = tmp_path / "d.json"
    assert main(["optimize", "scenarios/quickstart.yaml", *SMALL, *STATIC, "--profile", str(piloted), "--check",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "realised" in printed and "replayed on the scenario's fading" in printed
    result = json.loads(out.read_text())
    for name, p in result["policies"].items():
        # A static channel: every round alike. The solver's round ends at the last adapter upload; the
        # realised one also holds the aggregation and the broadcast, so it is longer, by little.
        assert p["realised_total_s"] == pytest.approx(p["realised_round_s"] * np.ceil(p["rounds"]), rel=1e-9)
        if name != "random":                   # the run draws its own random assignment
            assert 1.0 < p["realised_over_predicted"] < 1.2, name


def test_a_profile_piloted_otherwise_is_refused_or_warned(piloted, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    data = json.loads(piloted.read_text())
    data["pilot"]["local_iterations"] = 6
    bad.write_text(json.dumps(data))
    assert main(["optimize", "scenarios/quickstart.yaml", *SMALL, "--profile", str(bad)]) == 2
    assert (f"cosim: error: --profile: {bad}: its pilot runs had training.local_iterations=6 (the scenario has 2)"
            in capsys.readouterr().err)
    assert main(["optimize", "scenarios/quickstart.yaml", *SMALL, "--set", "clients.count=3",
                 "--set", "compute.client_flops_per_s=1e12", "--profile", str(piloted)]) == 0
    assert (f"cosim: warning: --profile: {piloted}: its pilot runs had clients.count=2 (the scenario has 3)"
            in capsys.readouterr().err)
