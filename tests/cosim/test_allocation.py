"""Allocation policies inside a run: the solver's predicted round delay is what the clock realises."""

import numpy as np
import pytest

from cosim.cli import main
from cosim.analysis import load_run

TINY = ["--set", "model.name=tiny-llama", "--set", "split.cut_layer=2", "--set", "clients.count=3",
        "--set", "training.rounds=2", "--set", "training.local_iterations=2", "--set", "training.seq_len=32",
        "--set", "data.test_size=8", "--set", "data.max_train=200",
        "--set", "compute.client_flops_per_s=[0.5e12, 1e12, 2e12]"]
STATIC = ["--set", "channel.fading=none", "--set", "channel.shadowing_std_db=0",
          "--set", "clients.placement=fixed", "--set", "clients.distances_m=[120, 300, 480]",
          "--set", "compute.server_slots=3"]


def run(tmp_path, name, *extra):
    out = tmp_path / name
    assert main(["run", "scenarios/quickstart.yaml", "--out", str(out), "--quiet", *TINY, *extra]) == 0
    return load_run(out)


@pytest.mark.parametrize("power", ["full", "least"])
def test_optimized_round_delay_is_realised_on_a_static_channel(tmp_path, power):
    res = run(tmp_path, "opt", *STATIC, "--set", "allocation.policy=resources_only", "--set", f"allocation.power={power}")
    ev, rounds = res.events, res.rounds
    max_w = 10 ** -0.7  # 23 dBm
    for _, rd in rounds.iterrows():
        mine = ev[(ev["round"] == rd["round"]) & (ev.client >= 0) & (ev.kind != "broadcast")]
        # The joint problem's round: the slowest client's I iterations + adapter upload (no queueing here).
        finish = mine.groupby("client").t_end_s.max() - rd.t_start_s
        assert finish.max() == pytest.approx(rd.predicted_s, rel=1e-9)
        sent_w = mine[mine.kind == "uplink"].groupby("client").power_w.first()
        if power == "full":   # every device at its whole budget; all but the slowest finish early
            np.testing.assert_allclose(sent_w, max_w, rtol=1e-9)
            assert (finish < rd.predicted_s * (1 - 1e-6)).sum() == len(finish) - 1
        else:                 # the least power that finishes everyone together at the predicted round
            np.testing.assert_allclose(finish, rd.predicted_s, rtol=1e-9)
            assert sent_w.max() == pytest.approx(max_w, rel=1e-9) and (sent_w < max_w * (1 - 1e-6)).sum() >= 1
    decisions = res.summary["allocation"]["decisions"]
    assert len(decisions) == 2 and sum(decisions[0]["subchannels"]) <= 50
    for k, n_sub in enumerate(decisions[0]["subchannels"]):
        up = ev[(ev.client == k) & (ev.kind == "uplink") & (ev["round"] == 0)]
        assert (up.n_subchannels == n_sub).all() and (up.power_w <= 10 ** -0.7 * (1 + 1e-9)).all()
    # The optimizer evens out the clients: the far client gets more subchannels than the near one.
    assert decisions[0]["subchannels"][2] > decisions[0]["subchannels"][0]


def test_optimized_beats_equal_and_costs_match_the_workload(tmp_path):
    opt = run(tmp_path, "opt", *STATIC, "--set", "allocation.policy=resources_only")
    eq = run(tmp_path, "eq", *STATIC)
    assert opt.summary["total_time_s"] < eq.summary["total_time_s"]
    assert np.isnan(eq.rounds.predicted_s).all()
    # The bytes the policy planned with are the bytes the steps sent.
    up = opt.events[opt.events.kind == "uplink"].bytes
    assert up.nunique() == 1 and up.iloc[0] == 4 * 32 * 64 * 4 + 2 * 4 * 32 * 8


def test_once_decides_one_allocation_and_random_stays_feasible(tmp_path):
    once = run(tmp_path, "once", "--set", "allocation.policy=resources_only", "--set", "allocation.every=once")
    assert len(once.summary["allocation"]["decisions"]) == 1
    rnd = run(tmp_path, "rnd", "--set", "allocation.policy=random")
    up = rnd.events[rnd.events.kind == "uplink"]
    assert (up.n_subchannels >= 1).all() and up.groupby("round").n_subchannels.apply(
        lambda s: s.groupby(up.loc[s.index, "client"]).first().sum()).max() <= 50


def test_real_run_with_the_optimizer_changes_cut_and_rank_and_trains_on(tmp_path):
    """The real workload reconfigured by the policy: the new cut and rank's measured costs are the table's."""
    from cosim.profile import read_profile

    profile = tmp_path / "profile.json"
    assert main(["profile", "scenarios/quickstart.yaml", *TINY, "--set", "lora.rank=4", "--cuts", "1,2,3",
                 "--ranks", "2,4", "--out", str(profile)]) == 0
    res = run(tmp_path, "opt", *STATIC, "--set", "lora.rank=4", "--set", "allocation.policy=optimizer",
              "--set", f"workload.profile={profile}", "--set", "training.eval_every=1")
    table = read_profile(profile)["costs"]
    # Without pilot curves every rank needs training.rounds: the cheaper rank 2 and, with slow devices, cut 1.
    assert res.rounds.cut.tolist() == [1, 1] and res.rounds["rank"].tolist() == [2, 2]
    ev = res.events
    for kind, field in (("client_forward", "client_forward_flops"), ("server_step", "server_flops"),
                        ("client_backward", "client_backward_flops"), ("adapter_upload", "client_adapter_bytes")):
        col = "bytes" if kind == "adapter_upload" else "flops"
        assert (ev[ev.kind == kind][col] == table[field][0, 0]).all(), kind
    assert np.isfinite(ev[ev.kind == "server_step"].loss).all()
    assert np.isfinite(res.rounds.eval_loss).all() and res.rounds.eval_loss.iloc[-1] < res.summary["before"]["loss"]
