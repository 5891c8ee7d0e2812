"""The clock: durations from measured costs and link rates, queueing, critical path, determinism.

A small deterministic workload stands in for the torch steps here, so the
expected durations can be computed by hand; tests/cosim/test_run.py drives the
real split-LoRA workload.
"""

import math

import numpy as np
import pandas as pd
import pytest

from cosim.radio import build_radio, equal_subchannels
from cosim.scenario import scenario_from_dict
from cosim.analysis import critical_path

from _fake import CountingWorkload
from _fake import simulate as simulate_scenario


def simulate(raw, workload=None):
    sc = scenario_from_dict(raw)
    _, total, events, rounds, _ = simulate_scenario(sc, workload)
    return sc, total, events, rounds


STATIC = {
    "clients": {"count": 3, "placement": "fixed", "distances_m": [100.0, 250.0, 400.0]},
    "channel": {"fading": "none", "shadowing_std_db": 0.0, "n_subchannels": 10},
    "compute": {"client_flops_per_s": [0.5e12, 1e12, 2e12]},
    "training": {"rounds": 2, "local_iterations": 3},
}


def hand_rate_bps(distance_m, n_sub, power_w_total, *, noise_figure_db, bw_hz=180e3):
    gain = 10 ** (-(128.1 + 37.6 * math.log10(distance_m / 1000)) / 10)
    noise_w = 10 ** ((-174 + noise_figure_db - 30) / 10) * bw_hz
    p = power_w_total / n_sub
    return n_sub * bw_hz * math.log2(1 + p * gain / noise_w)


def test_durations_equal_bits_over_rate_and_flops_over_speed():
    sc, total, ev, _ = simulate(STATIC)
    subs = equal_subchannels(3, 10)
    device_w = 10 ** ((23 - 30) / 10)
    for k, d in enumerate([100.0, 250.0, 400.0]):
        up = hand_rate_bps(d, len(subs[k]), device_w, noise_figure_db=5)
        bs_share_w = 10 ** ((46 - 30) / 10) / 10 * len(subs[k])
        down = hand_rate_bps(d, len(subs[k]), bs_share_w, noise_figure_db=9)
        mine = ev[ev.client == k]
        for kind, rate in (("uplink", up), ("adapter_upload", up), ("downlink", down), ("broadcast", down)):
            rows = mine[mine.kind == kind]
            assert len(rows) > 0
            np.testing.assert_allclose(rows.duration_s, rows.bytes * 8 / rate, rtol=1e-9, atol=0)
        f_k = sc.compute.client_flops_per_s[k]
        for kind in ("client_forward", "client_backward"):
            rows = mine[mine.kind == kind]
            np.testing.assert_allclose(rows.duration_s, rows.flops / f_k, rtol=1e-12)
        rows = mine[mine.kind == "server_step"]
        np.testing.assert_allclose(rows.duration_s, rows.flops / 100e12, rtol=1e-12)
    agg = ev[ev.kind == "aggregate"]
    np.testing.assert_allclose(agg.duration_s, agg.flops / 10e12, rtol=1e-12)


def test_total_time_is_the_critical_path():
    _, total, ev, rounds = simulate({**STATIC, "channel": {"n_subchannels": 10}})  # with fading
    path = critical_path(ev)
    assert path.duration_s.sum() == pytest.approx(total, rel=1e-12)
    assert np.allclose(path.t_start_s.to_numpy()[1:], path.t_end_s.to_numpy()[:-1], rtol=0, atol=1e-12)
    assert path.t_start_s.iloc[0] == 0.0 and path.t_end_s.iloc[-1] == total
    assert rounds.t_end_s.iloc[-1] == total
    assert (rounds.t_start_s.to_numpy()[1:] == rounds.t_end_s.to_numpy()[:-1]).all()


def test_each_client_chain_has_no_unrecorded_gap():
    _, _, ev, _ = simulate(STATIC)
    # From the round's start to the adapter upload a client is never idle unrecorded; it then
    # waits at the barrier until the broadcast.
    for (r, k), g in ev[(ev.client >= 0) & (ev.kind != "broadcast")].groupby(["round", "client"]):
        g = g.sort_values("t_start_s", kind="stable")
        assert np.allclose(g.t_start_s.to_numpy()[1:], g.t_end_s.to_numpy()[:-1], rtol=0, atol=1e-12), (r, k)
        assert g.t_start_s.iloc[0] == ev[ev["round"] == r].t_start_s.min()
        assert list(g.kind)[-1] == "adapter_upload"


def test_main_server_is_shared_and_queueing_shows():
    # Identical clients at one distance reach the server together: with one slot, they queue.
    raw = {**STATIC, "clients": {"count": 3, "placement": "fixed", "distances_m": [200.0]},
           "compute": {"client_flops_per_s": 1e12}}
    _, _, ev, _ = simulate(raw, workload=None)
    steps = ev[ev.kind == "server_step"].sort_values("t_start_s")
    assert (steps.t_start_s.to_numpy()[1:] >= steps.t_end_s.to_numpy()[:-1] - 1e-12).all()  # never overlap
    queue = ev[ev.kind == "server_queue"]
    assert len(queue) > 0
    for _, q in queue.iterrows():
        step = ev[(ev.kind == "server_step") & (ev.client == q.client) & (ev["round"] == q["round"])
                  & (ev.iteration == q.iteration)].iloc[0]
        assert step.t_start_s == q.t_end_s
    # With as many slots as clients nobody waits.
    _, _, ev2, _ = simulate({**raw, "compute": {"client_flops_per_s": 1e12, "server_slots": 3}})
    assert (ev2.kind == "server_queue").sum() == 0


def test_the_workload_is_driven_in_event_order():
    wl = CountingWorkload(3)
    simulate(STATIC, workload=wl)
    for k in range(3):
        mine = [kind for kind, c in wl.calls if c == k and kind != "cancel"]
        assert mine == ["client_forward", "server_step", "client_backward"] * (2 * 3)


def test_same_seed_same_events_and_other_seed_other_fading():
    raw = {"clients": {"count": 4}, "training": {"rounds": 2, "local_iterations": 2}, "seed": 5}
    _, t1, a, _ = simulate(raw)
    _, t2, b, _ = simulate(raw)
    pd.testing.assert_frame_equal(a, b)
    _, t3, c, _ = simulate({**raw, "seed": 6})
    assert t1 == t2 and t3 != t1


def test_adding_a_client_keeps_the_others_radio():
    r4 = build_radio(scenario_from_dict({"clients": {"count": 4}, "seed": 3}))
    r5 = build_radio(scenario_from_dict({"clients": {"count": 5}, "seed": 3}))
    for a, b in zip(r4, r5):
        assert a.distance_m == b.distance_m and a.large_scale_gain_lin == b.large_scale_gain_lin
        assert np.array_equal(a.uplink.fading.power_gain(7), b.uplink.fading.power_gain(7))
