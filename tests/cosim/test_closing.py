"""How a round closes, checked by hand: deadlines, over-selection, participation, the main server's sharing.

The deterministic workload of ``_fake`` has hand-computable costs and a scalar
adapter per client that grows by k + 1 per completed backward, so the averages
the servers take can be recomputed here. Static channel, one server slot per
client: the clients never meet at the main server here (the tests check there is no ``server_queue``),
so each client's chain is a closed form.
"""

import math

import numpy as np
import pandas as pd
import pytest
import simpy

from cosim.radio import equal_subchannels
from cosim.scenario import scenario_from_dict
from cosim.server import MainServer

from _fake import CountingWorkload, simulate

DISTANCES = [100.0, 250.0, 400.0, 150.0]
FLOPS = [0.5e12, 1e12, 2e12, 0.8e12]
STATIC = {
    "clients": {"count": 4, "placement": "fixed", "distances_m": DISTANCES},
    "channel": {"fading": "none", "shadowing_std_db": 0.0, "n_subchannels": 12},
    "compute": {"client_flops_per_s": FLOPS, "server_flops_per_s": 1e16},
    "training": {"rounds": 2, "local_iterations": 3},
}
I = 3


def rate_bps(distance_m, n_sub, power_w_total, noise_figure_db, bw_hz=180e3):
    gain = 10 ** (-(128.1 + 37.6 * math.log10(distance_m / 1000)) / 10)
    noise_w = 10 ** ((-174 + noise_figure_db - 30) / 10) * bw_hz
    return n_sub * bw_hz * math.log2(1 + power_w_total / n_sub * gain / noise_w)


def chain_end_s(k, n_sub, iterations=I, n_subchannels=12):
    """Client k's adapter upload ends this long after the round starts (no queueing, static channel)."""
    wl = CountingWorkload(4)
    up = rate_bps(DISTANCES[k], n_sub, 10 ** ((23 - 30) / 10), 5)
    down = rate_bps(DISTANCES[k], n_sub, 10 ** ((46 - 30) / 10) / n_subchannels * n_sub, 9)
    fwd, srv, bwd = wl.client_forward(k), wl.server_step(k), wl.client_backward(k)
    msg, reply = fwd.run(), srv.run()
    one = (fwd.flops / FLOPS[k] + 8 * msg.nbytes / up + srv.flops / 1e16 + 8 * reply.nbytes / down
           + bwd.flops / FLOPS[k])
    return iterations * one + 8 * wl.adapter_bytes / up


def run(raw, workload=None):
    sc = scenario_from_dict(raw)
    wl = workload or CountingWorkload(sc.clients.count)
    fed, total, ev, rounds, clients = simulate(sc, wl)
    return fed, wl, total, ev, rounds, clients


def test_hand_computed_chain_matches_the_barrier_run():
    _, _, _, ev, _, _ = run(STATIC)
    assert not (ev.kind == "server_queue").any()
    subs = equal_subchannels(4, 12)
    up = ev[(ev.kind == "adapter_upload") & (ev["round"] == 0)].set_index("client")
    for k in range(4):
        assert up.loc[k, "t_end_s"] == pytest.approx(chain_end_s(k, len(subs[k])), rel=1e-9)


def test_deadline_leaves_out_exactly_the_late_clients_and_averages_the_others_by_hand():
    ends = {k: chain_end_s(k, 3) for k in range(4)}
    order = sorted(ends, key=ends.get)
    deadline = (ends[order[1]] + ends[order[2]]) / 2          # two on time, two late
    on_time = sorted(order[:2])
    fed, wl, total, ev, rounds, clients = run({**STATIC, "aggregation": {"mode": "deadline",
                                                                          "deadline_s": deadline}})
    r0 = clients[clients["round"] == 0].set_index("client")
    assert sorted(r0.index[r0.status == "aggregated"]) == on_time
    assert set(r0.status[r0.index.isin(order[2:])]) == {"deadline"}
    # the late clients' in-flight events are cut at the deadline, and nothing of theirs runs after it
    for k in order[2:]:
        mine = ev[(ev.client == k) & (ev["round"] == 0) & (ev.kind != "broadcast")]
        assert mine.t_end_s.max() == pytest.approx(deadline, abs=1e-12)
        assert mine.cut.sum() == 1 and bool(mine.sort_values("t_end_s").cut.iloc[-1])
        assert (ev[(ev.client == k) & (ev["round"] == 0) & (ev.kind == "adapter_upload")].cut).all()
    # the round's aggregate starts at the deadline and averages exactly the on-time adapters by hand
    agg = ev[(ev.kind == "aggregate") & (ev["round"] == 0)]
    assert agg.t_start_s.iloc[0] == pytest.approx(deadline, abs=1e-12)
    n = wl.sample_counts()
    adapters = {k: I * (k + 1.0) for k in range(4)}
    by_hand = sum(n[k] * adapters[k] for k in on_time) / sum(n[k] for k in on_time)
    assert wl.history[0] == ("fedavg", {k: float(n[k]) for k in on_time})
    assert r0.loc[on_time, "weight"].sum() == pytest.approx(1.0)
    # every selected client (late ones too) receives the broadcast
    bc = ev[(ev.kind == "broadcast") & (ev["round"] == 0)]
    assert sorted(bc.client) == [0, 1, 2, 3]
    assert rounds.loc[0, "closed_by"] == "deadline" and rounds.loc[0, "included"] == 2
    # round 1 starts from the hand average for everyone
    a1 = by_hand + sum(n[k] * I * (k + 1.0) for k in on_time) / sum(n[k] for k in on_time)
    assert wl.global_adapter == pytest.approx(a1, rel=1e-12)


def test_deadline_later_than_everyone_is_the_barrier():
    base = run(STATIC)
    late = run({**STATIC, "aggregation": {"mode": "deadline", "deadline_s": 1e6}})
    cols = [c for c in base[3].columns if c != "cut"]
    pd.testing.assert_frame_equal(base[3][cols], late[3][cols])
    assert (late[4].closed_by == "all_done").all()


def test_no_client_in_time_keeps_the_global_adapter():
    fed, wl, total, ev, rounds, clients = run({**STATIC, "aggregation": {"mode": "deadline", "deadline_s": 1e-3}})
    assert (rounds.included == 0).all() and (ev.kind == "aggregate").sum() == 0
    assert wl.global_adapter == 0.0 and wl.adapters == [0.0] * 4
    assert total == pytest.approx(2e-3, abs=1e-12)


def test_over_selection_aggregates_the_first_to_finish():
    raw = {**STATIC, "participation": {"fraction": 0.5},
           "aggregation": {"mode": "over_selection", "over_selection": 1.5}}
    fed, wl, total, ev, rounds, clients = run(raw)
    for r in range(2):
        mine = clients[clients["round"] == r].set_index("client")
        assert len(mine) == 3                                   # ceil(0.5 x 4) = 2 needed, 3 selected
        # the plan deals the 12 subchannels over the 3 selected; each one's chain by hand
        ends = {k: chain_end_s(k, 4) for k in mine.index}
        first_two = sorted(sorted(ends, key=ends.get)[:2])
        assert sorted(mine.index[mine.status == "aggregated"]) == first_two
        assert (mine.status == "over_selection").sum() == 1
        assert rounds.loc[r, "closed_by"] == "over_selection"


def test_participation_draws_its_own_stream():
    raw = {**STATIC, "training": {"rounds": 6, "local_iterations": 1}, "participation": {"fraction": 0.5}}
    a = run(raw)[5]
    b = run(raw)[5]
    pd.testing.assert_frame_equal(a, b)
    picks = [tuple(sorted(g.client)) for _, g in a.groupby("round")]
    assert all(len(p) == 2 for p in picks) and len(set(picks)) > 1
    c = run({**raw, "seed": 1})[5]
    assert [tuple(sorted(g.client)) for _, g in c.groupby("round")] != picks


def test_participation_by_gain_favours_the_near_devices():
    from cosim.participation import Participation

    gains = np.array([1.0, 1e-3, 1e-6, 1e-9])
    p = Participation(fraction=0.25, by="gain", gains=gains, seed=0)
    counts = np.zeros(4)
    for r in range(400):
        for k in p.select(r, [0, 1, 2, 3]):
            counts[k] += 1
    assert counts[0] > 395 and counts.sum() == 400
    u = Participation(fraction=0.25, by="uniform", gains=gains, seed=0)
    uniform = np.bincount([k for r in range(400) for k in u.select(r, [0, 1, 2, 3])], minlength=4)
    assert uniform.min() > 60                                   # about 100 each


def test_processor_sharing_by_hand():
    # Step A (6 GFLOP) alone from t=0 at 2 GFLOP/s; B (2 GFLOP) joins at t=1: both at 1 GFLOP/s.
    # At t=1 A has 4 left; B ends at t=3 (2 GFLOP at 1); A has 2 left then, alone: ends at t=4.
    env = simpy.Environment()
    server = MainServer(env, flops_per_s=2e9, slots=2)
    done = {}

    def step(name, at, flops):
        yield env.timeout(at)
        with server.slots.request() as slot:
            yield slot
            yield from server.serve(server.job(flops))
        done[name] = env.now

    env.process(step("A", 0.0, 6e9))
    env.process(step("B", 1.0, 2e9))
    env.run()
    assert done["B"] == pytest.approx(3.0, abs=1e-12) and done["A"] == pytest.approx(4.0, abs=1e-12)


def test_two_slots_do_not_double_the_server():
    raw = {**STATIC, "clients": {"count": 2, "placement": "fixed", "distances_m": [200.0]},
           "compute": {"client_flops_per_s": 1e12, "server_slots": 2}}
    class Twins(CountingWorkload):  # both clients cost what client 0 costs
        def client_forward(self, k):
            return super().client_forward(0)

        def server_step(self, k):
            return super().server_step(0)

        def client_backward(self, k):
            return super().client_backward(0)

    _, _, _, ev, _, _ = run(raw, Twins(2))
    steps = ev[ev.kind == "server_step"].sort_values(["round", "iteration", "client"])
    # identical clients reach the server together and share it: each step takes twice its FLOPs' time
    pairs = steps.groupby(["round", "iteration"])
    for _, g in pairs:
        assert g.t_start_s.nunique() == 1
        assert g.duration_s.max() == pytest.approx(g.flops.sum() / 100e12, rel=1e-9)


@pytest.mark.parametrize("extra", [
    {"aggregation": {"mode": "deadline", "deadline_s": 0.5}},
    {"participation": {"fraction": 0.5}, "aggregation": {"mode": "over_selection"}},
    {"aggregation": {"mode": "fedasync"}},
    {"aggregation": {"mode": "fedbuff", "buffer_size": 2}},
    {"availability": {"model": "on_off", "mean_on_s": 1.0, "mean_off_s": 0.5}},
    {"strategy": {"name": "sl"}},
    {"strategy": {"name": "sfl_v2"}, "participation": {"fraction": 0.5}},
])
def test_same_scenario_and_seed_same_events(extra):
    raw = {"clients": {"count": 4}, "training": {"rounds": 3, "local_iterations": 2}, "seed": 3, **extra}
    a, b = run(raw), run(raw)
    for x, y in zip(a[3:], b[3:]):
        pd.testing.assert_frame_equal(x, y)
    assert a[2] == b[2]
