"""Asynchronous aggregation (FedAsync, FedBuff) checked by hand on the deterministic workload.

Client k's scalar adapter starts from the global one it began from and grows by
k + 1 per local iteration, so every server update can be recomputed from the
trace alone: which update came when, from which base version.
"""

import math

import pytest

from cosim.scenario import scenario_from_dict

from _fake import CountingWorkload, simulate

BASE = {
    "clients": {"count": 4, "placement": "fixed", "distances_m": [100.0, 250.0, 400.0, 150.0]},
    "channel": {"n_subchannels": 12},
    "compute": {"client_flops_per_s": [0.5e12, 1e12, 2e12, 0.8e12]},
    "training": {"rounds": 12, "local_iterations": 2},
    "seed": 4,
}
I = 2


def run(extra):
    sc = scenario_from_dict({**BASE, **extra})
    wl = CountingWorkload(4)
    fed, total, ev, rounds, clients = simulate(sc, wl)
    return fed, wl, total, ev, rounds, clients


def test_fedasync_versions_follow_the_upload_order_and_mix_by_hand():
    alpha, a = 0.6, 0.5
    fed, wl, total, ev, rounds, clients = run({"aggregation": {"mode": "fedasync", "alpha": alpha,
                                                               "staleness_exponent": a}})
    assert len(rounds) == 12 and fed.version == 12 and (rounds.closed_by == "fedasync").all()
    uploads = ev[(ev.kind == "adapter_upload") & ~ev.cut].sort_values("t_end_s", kind="stable")
    mixed = [h[1] for h in wl.history]
    # every server update takes the next finished upload, in the order uploads finished
    assert mixed == list(uploads.client)[:12]
    taken = clients[clients.status == "aggregated"]
    assert list(taken.client) == mixed
    # staleness and weight by hand, and the global adapter recomputed from the trace
    g, globals_ = 0.0, [0.0]
    for v, (_, row) in enumerate(taken.iterrows()):
        tau = v - row.base_version
        assert row.staleness == tau and tau >= 0
        w = alpha * (1 + tau) ** -a
        assert row.weight == pytest.approx(w, rel=1e-15)
        x = globals_[row.base_version] + I * (row.client + 1)   # began from that version, then I steps
        g = (1 - w) * g + w * x
        globals_.append(g)
    assert wl.global_adapter == pytest.approx(g, rel=1e-12)
    assert any(taken.staleness > 0)                              # the check covers stale updates
    # each server update's row ends with its aggregate event
    agg = ev[ev.kind == "aggregate"].sort_values("t_end_s")
    assert list(rounds.t_end_s) == pytest.approx(list(agg.t_end_s))


def test_fedbuff_applies_every_m_updates_with_staleness_weights():
    m, lr = 3, 0.8
    fed, wl, total, ev, rounds, clients = run({"aggregation": {"mode": "fedbuff", "buffer_size": m,
                                                               "server_lr": lr}})
    assert len(rounds) == 12 and (rounds.clients == m).all()
    taken = clients[clients.status == "aggregated"]
    assert len(taken) == 12 * m
    g, globals_ = 0.0, [0.0]
    for v in range(12):
        batch = taken.iloc[v * m:(v + 1) * m]
        step = 0.0
        for _, row in batch.iterrows():
            tau = v - row.base_version
            assert row.staleness == tau
            assert row.weight == pytest.approx(lr / math.sqrt(1 + tau) / m, rel=1e-15)
            step += row.weight * I * (row.client + 1)             # delta = I (k + 1) from its base
        g += step
        globals_.append(g)
    assert wl.global_adapter == pytest.approx(g, rel=1e-12)


def test_fedbuff_drops_updates_staler_than_the_maximum():
    fed, wl, total, ev, rounds, clients = run({"aggregation": {"mode": "fedbuff", "buffer_size": 2,
                                                               "max_staleness": 0}})
    stale = clients[clients.status == "stale"]
    assert len(stale) > 0 and (stale.staleness > 0).all() and stale.weight.isna().all()
    assert (clients[clients.status == "aggregated"].staleness == 0).all()


def test_clients_restart_at_once_from_the_newest_global():
    fed, wl, total, ev, rounds, clients = run({"aggregation": {"mode": "fedasync"}})
    for k in range(4):
        mine = ev[(ev.client == k) & (ev.kind != "aggregate")].sort_values("t_start_s", kind="stable")
        # no idle gap in a client's own chain except while the server mixes its update in
        gaps = mine.t_start_s.to_numpy()[1:] - mine.t_end_s.to_numpy()[:-1]
        mix_s = 3 * 55_296 / 10e12
        assert (gaps >= -1e-12).all() and (gaps <= mix_s * 4 + 1e-12).all()
        downloads = mine[mine.kind == "model_download"]
        assert len(downloads) >= 1 and (downloads["bytes"] == wl.adapter_bytes).all()


def test_time_budget_ends_the_run_and_cuts_work_in_flight():
    fed, wl, total, ev, rounds, clients = run({"aggregation": {"mode": "fedasync", "time_budget_s": 20.0},
                                               "training": {"rounds": 1000, "local_iterations": 2}})
    assert total == pytest.approx(20.0) and fed.version < 1000
    assert (ev.t_end_s <= 20.0 + 1e-9).all()
    assert set(clients.status) <= {"aggregated", "end"} and (clients.status == "end").sum() == 4


def test_partial_concurrency_keeps_that_many_clients_at_work():
    fed, wl, total, ev, rounds, clients = run({"aggregation": {"mode": "fedasync"},
                                               "participation": {"fraction": 0.5}})
    steps = ev[ev.kind.isin(["client_forward", "client_backward", "uplink", "downlink", "adapter_upload"])]
    times = sorted(set(steps.t_start_s))
    for t in times[:: max(1, len(times) // 50)]:
        working = steps[(steps.t_start_s <= t) & (steps.t_end_s > t)].client.nunique()
        assert working <= 2


def test_a_server_waiting_for_a_device_to_come_online_records_the_wait():
    """A server waiting for a device to come online records the wait as an ``idle`` event, so the
    critical path walks back to time 0 (it broke before: nothing ended when the device came online)."""
    from cosim.analysis.analysis import critical_path

    fed, wl, total, ev, rounds, clients = run({
        "aggregation": {"mode": "fedasync"},
        "availability": {"model": "on_off", "mean_on_s": 1.0, "mean_off_s": 3.0},
        "training": {"rounds": 4, "local_iterations": 2}})
    idle = ev[ev.kind == "idle"]
    assert len(idle) > 0 and (idle.client == -1).all()
    path = critical_path(ev)
    assert path.duration_s.sum() == pytest.approx(total, rel=1e-8)
    # each wait ends when a device comes online and starts work from the newest global adapter
    starts = ev[ev.client >= 0].t_start_s.to_numpy()
    assert all(min(abs(starts - t)) < 1e-12 for t in idle.t_end_s)
