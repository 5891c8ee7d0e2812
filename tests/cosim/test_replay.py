"""The replay workload: a measured cost table played back gives the real run's clock, without torch."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from cosim.cli import main
from cosim.profile import read_profile
from cosim.analysis import load_run

TINY = ["--set", "model.name=tiny-llama", "--set", "split.cut_layer=2", "--set", "clients.count=3",
        "--set", "training.rounds=2", "--set", "training.local_iterations=2", "--set", "training.seq_len=32",
        "--set", "data.test_size=8", "--set", "data.max_train=200", "--set", "lora.rank=4",
        "--set", "compute.client_flops_per_s=[0.5e12, 1e12, 2e12]"]
STATIC = ["--set", "channel.fading=none", "--set", "channel.shadowing_std_db=0",
          "--set", "clients.placement=fixed", "--set", "clients.distances_m=[120, 300, 480]"]


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    """Cuts 1..3 x ranks 2, 4, with a 2-round pilot at rank 4 (rank 2 takes its rounds)."""
    path = tmp_path_factory.mktemp("profile") / "profile.json"
    assert main(["profile", "scenarios/quickstart.yaml", *TINY, "--cuts", "1,2,3", "--ranks", "2,4",
                 "--pilot-rounds", "2", "--pilot-ranks", "4", "--out", str(path)]) == 0
    return path


def run(tmp_path, name, *extra):
    out = tmp_path / name
    assert main(["run", "scenarios/quickstart.yaml", "--out", str(out), "--quiet", *TINY, *extra]) == 0
    return load_run(out)


def replay(profile):
    return ["--set", "workload.kind=replay", "--set", f"workload.profile={profile}"]


def test_replay_gives_the_real_runs_flops_bytes_and_durations(tmp_path, profile):
    real = run(tmp_path, "real", "--set", "training.eval_every=1")
    rep = run(tmp_path, "replay", "--set", "training.eval_every=1", *replay(profile))
    a, b = real.events, rep.events
    assert len(a) == len(b) > 0
    assert (a.kind.values == b.kind.values).all() and (a.client.values == b.client.values).all()
    for col in ("flops", "bytes", "duration_s", "t_start_s", "t_end_s"):
        np.testing.assert_allclose(b[col].to_numpy(float), a[col].to_numpy(float), rtol=1e-12, atol=0)
    assert rep.summary["total_time_s"] == pytest.approx(real.summary["total_time_s"], rel=1e-12)
    assert b[b.kind == "server_step"].loss.isna().all()  # nothing is learned in a replay
    assert (rep.rounds.cut == 2).all() and (rep.rounds["rank"] == 4).all()
    assert (real.rounds.cut == 2).all() and (real.rounds["rank"] == 4).all()
    # Accuracy and loss: the pilot curve of rank 4, measured on the same scenario and seed.
    pilot = json.loads(profile.read_text())["pilot"]
    np.testing.assert_allclose(rep.rounds.eval_loss, pilot["eval_loss"]["4"][1:], rtol=1e-12)
    np.testing.assert_allclose(rep.rounds.accuracy, pilot["accuracy"]["4"][1:], rtol=1e-12)
    np.testing.assert_allclose(real.rounds.eval_loss, pilot["eval_loss"]["4"][1:], rtol=1e-5)
    assert rep.summary["before"]["loss"] == pytest.approx(pilot["eval_loss"]["4"][0], rel=1e-12)


def test_a_replay_of_64_clients_takes_seconds(tmp_path, profile):
    t0 = time.perf_counter()
    res = run(tmp_path, "k64", *replay(profile), "--set", "clients.count=64", "--set", "channel.n_subchannels=128",
              "--set", "compute.client_flops_per_s=1e12", "--set", "training.rounds=3")
    wall = time.perf_counter() - t0
    assert res.events.client.max() == 63 and len(res.rounds) == 3
    assert wall < 30, wall  # about 2 s on a quiet machine; no model is loaded


def test_rounds_past_the_pilot_follow_the_fitted_curve(tmp_path, profile, capsys):
    out = tmp_path / "long"
    assert main(["run", "scenarios/quickstart.yaml", "--out", str(out), "--quiet", *TINY, *replay(profile),
                 "--set", "training.rounds=4", "--set", "training.eval_every=1"]) == 0
    res = load_run(out)
    from cosim.profile import profile_convergence

    conv = profile_convergence(read_profile(profile))
    assert res.rounds.eval_loss.iloc[1] == conv.curves["loss"][4][2]          # measured (pilot: 2 rounds)
    assert res.rounds.eval_loss.iloc[3] == pytest.approx(float(conv.fits["loss"][4](4)), rel=1e-12)  # fitted
    # ... and said so: never shown as if measured
    assert res.summary["after"]["source"] == "extrapolated" and res.summary["before"]["source"] == "pilot"
    assert any("extrapolated" in note for note in res.summary["notes"])
    printed = capsys.readouterr().out
    assert "extrapolated" in printed and "beyond the pilot's 2 measured rounds" in printed


@pytest.mark.parametrize("option", [
    ["--set", "aggregation.mode=deadline", "--set", "aggregation.deadline_s=0.3"],
    ["--set", "strategy.name=sfl_v2"],
    ["--set", "aggregation.mode=fedbuff", "--set", "aggregation.buffer_size=2"],
    ["--set", "availability.model=on_off", "--set", "availability.mean_on_s=0.5",
     "--set", "availability.mean_off_s=0.2"],
])
def test_replay_times_the_new_options_exactly_and_models_no_accuracy(tmp_path, profile, capsys, option):
    real = run(tmp_path, "real", "--set", "training.eval_every=1", *option)
    rep = run(tmp_path, "replay", "--set", "training.eval_every=1", *replay(profile), *option)
    a, b = real.events, rep.events
    assert len(a) == len(b) > 0
    for col in ("kind", "client", "round", "cut"):
        assert (a[col].values == b[col].values).all(), col
    for col in ("flops", "bytes", "t_start_s", "t_end_s"):
        np.testing.assert_allclose(b[col].to_numpy(float), a[col].to_numpy(float), rtol=1e-12, atol=0)
    assert (real.clients.status.values == rep.clients.status.values).all()
    # what the pilot cannot know is not given a number
    assert rep.rounds.accuracy.isna().all() and np.isnan(rep.summary["after"]["accuracy"])
    assert rep.summary["after"]["source"] == "not_modelled"
    assert any("accuracy not modelled" in note for note in rep.summary["notes"])
    assert real.rounds.accuracy.notna().all()


@pytest.mark.parametrize("extra, message", [
    (["--set", "workload.kind=replay"], "workload.profile: expected a `cosim profile --out` JSON file"),
    (["--set", "workload.kind=replay", "--set", "workload.profile=/nonexistent/p.json"],
     "workload.profile: /nonexistent/p.json: no such file"),
])
def test_a_replay_without_a_readable_profile_is_refused(tmp_path, extra, message, capsys):
    assert main(["run", "scenarios/quickstart.yaml", "--out", str(tmp_path / "x"), "--quiet", *TINY, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_profile_without_the_scenarios_cut_or_rank_is_refused(tmp_path, profile, capsys):
    code = main(["run", "scenarios/quickstart.yaml", "--out", str(tmp_path / "x"), "--quiet", *TINY,
                 *replay(profile), "--set", "split.cut_layer=4", "--set", "lora.rank=8",
                 "--set", "training.seq_len=16"])
    assert code == 2
    err = capsys.readouterr().err
    assert "workload.profile:" in err and "lacks split.cut_layer=4" in err and "lacks lora.rank=8" in err
    assert "training.seq_len=32 (the scenario has 16)" in err


def test_an_old_profile_reads_but_cannot_be_replayed(tmp_path, profile, capsys):
    old = json.loads(profile.read_text())
    for key in ("server_adapter_bytes", "adapter_element_bytes", "pilot"):
        del old[key]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    result = read_profile(path)
    assert result["pilot"] is None and result["server_adapter_bytes"] is None
    assert main(["run", "scenarios/quickstart.yaml", "--out", str(tmp_path / "x"), "--quiet", *TINY,
                 *replay(path)]) == 2
    assert "has no server_adapter_bytes" in capsys.readouterr().err


@pytest.mark.parametrize("policy", ["optimizer", "split_rank_only"])
def test_in_sim_policies_choose_cut_and_rank_and_the_replay_follows(tmp_path, profile, policy):
    res = run(tmp_path, policy, *STATIC, *replay(profile), "--set", f"allocation.policy={policy}",
              "--set", "compute.server_slots=3")
    table = read_profile(profile)["costs"]
    for d, (_, rd) in zip(res.summary["allocation"]["decisions"], res.rounds.iterrows()):
        assert (rd.cut, rd["rank"]) == (d["cut"], d["rank"])
        i, j = list(table["cuts"]).index(d["cut"]), list(table["ranks"]).index(d["rank"])
        ev = res.events[res.events["round"] == rd["round"]]
        assert (ev[ev.kind == "client_forward"].flops == table["client_forward_flops"][i, j]).all()
        assert (ev[ev.kind == "adapter_upload"].bytes == table["client_adapter_bytes"][i, j]).all()
        # On a static channel the round the policy predicted is the round the clock realised.
        mine = ev[(ev.client >= 0) & (ev.kind != "broadcast")]
        assert mine.t_end_s.max() - rd.t_start_s == pytest.approx(rd.predicted_s, rel=1e-9)
    # Three cuts to choose from: with slow devices the optimizer keeps the fewest blocks on them.
    assert res.rounds.cut.tolist() == [1, 1]


def test_the_replay_imports_without_torch():
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('torch', 'transformers', 'peft', 'llm_split'):\n"
            "            raise ModuleNotFoundError(name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import cosim.workloads.replay, cosim.run\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
