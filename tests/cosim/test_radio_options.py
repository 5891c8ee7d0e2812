"""The radio options of a scenario: validation with key paths, stream independence, multicast, energy."""

import math
import warnings

import numpy as np
import pytest

import channel
from cosim.energy import device_j_per_flop
from cosim.errors import ScenarioError
from cosim.radio import OutsideCellWarning, build_radio, multicast_link
from cosim.scenario import scenario_from_dict

RICH = {"channel": {"pathloss_model": "uma", "carrier_hz": 3.5e9, "fading": "tdl", "tdl_profile": "TDL-C",
                    "delay_spread_s": 300e-9, "correlated_shadowing": True, "speed_mps": 10.0},
        "link": {"rate_model": "mcs", "mcs_table": "qam256"},
        "mobility": {"model": "random_waypoint"}}


def _with(raw, count, seed=2):
    return scenario_from_dict({**raw, "seed": seed, "clients": {"count": count}})


def test_tr38901_ranges_are_refused_with_the_key_path():
    with pytest.raises(ScenarioError) as err:
        scenario_from_dict({"channel": {"pathloss_model": "umi", "carrier_hz": 150e9, "ut_height_m": 30.0},
                            "clients": {"cell_radius_m": 8000.0}})
    text = str(err.value)
    for key in ("channel.carrier_hz", "channel.ut_height_m", "clients.cell_radius_m"):
        assert key in text
    with pytest.raises(ScenarioError, match="clients.distances_m"):
        scenario_from_dict({"channel": {"pathloss_model": "uma"},
                            "clients": {"count": 2, "placement": "fixed", "distances_m": [5.0, 100.0]}})


def test_outside_cell_warns_or_refuses():
    raw = {"clients": {"count": 2, "placement": "fixed", "distances_m": [100.0, 5000.0]}}
    with pytest.warns(OutsideCellWarning, match="clients.distances_m"):
        build_radio(scenario_from_dict(raw))
    with pytest.raises(ScenarioError, match=r"clients.distances_m\[1\]: expected a distance in the cell"):
        scenario_from_dict({**raw, "channel": {"outside_cell": "error"}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_radio(scenario_from_dict({"clients": {"count": 2}}))  # uniform placement never warns


def test_adding_a_client_keeps_the_others_draws_with_every_option():
    r3, r4 = build_radio(_with(RICH, 3)), build_radio(_with(RICH, 4))
    for a, b in zip(r3, r4):
        assert a.large_scale_gain_lin == b.large_scale_gain_lin
        np.testing.assert_array_equal(a.uplink.fading.power_gains(0, 20), b.uplink.fading.power_gains(0, 20))
        np.testing.assert_array_equal(a.uplink.large_scale.gains_lin(0, 300), b.uplink.large_scale.gains_lin(0, 300))
        # On the same subchannels the two give the same transfer (same block-error stream).
        same = dict(bandwidth_hz=180e3, noise_power_w=a.uplink.noise_power_w[0])
        ta = a.uplink.with_allocation([3, 4, 5], 0.05, **same).transfer(4e5, 1.0)
        assert ta == b.uplink.with_allocation([3, 4, 5], 0.05, **same).transfer(4e5, 1.0)


def test_rich_radio_moves_the_devices_and_draws_block_errors():
    radios = build_radio(_with(RICH, 4))
    for r in radios:
        track = r.uplink.large_scale
        assert track is not None and not track.is_static
        assert r.uplink.distance_at_m(0.0) == pytest.approx(r.distance_m)
        assert r.uplink.distance_at_m(60.0) != pytest.approx(r.distance_m)  # 600 m walked
        tx = r.uplink.transfer(2e6, 5.0)
        assert tx.mcs >= 0 and tx.retransmissions >= 0
        assert tx.distance_m == pytest.approx(r.uplink.distance_at_m(5.0))
        assert tx.energy_j == pytest.approx(r.uplink_power_w * tx.duration_s)
    # TDL makes neighbouring subchannels fade together more than distant ones.
    g = radios[0].uplink.fading.power_gains(0, 4000)
    near = np.corrcoef(g[:, 0], g[:, 1])[0, 1]
    far = np.corrcoef(g[:, 0], g[:, 40])[0, 1]
    assert near > far + 0.2


def test_multicast_goes_at_the_worst_clients_rate():
    sc = scenario_from_dict({"clients": {"count": 3, "placement": "fixed", "distances_m": [50.0, 200.0, 450.0]},
                             "channel": {"fading": "none", "shadowing_std_db": 0.0, "broadcast": "multicast"}})
    radios = build_radio(sc)
    mc = multicast_link(sc, radios)
    ch = sc.channel
    # By hand: every client on all 50 subchannels with 46 dBm / 50 each; the farthest is the worst.
    noise_w = 10 ** ((-174 + 9) / 10) * 1e-3 * 180e3
    p_w = 10 ** ((46 - 30) / 10) / 50
    beta = 10 ** (-(128.1 + 37.6 * math.log10(450 / 1000)) / 10)
    rate = 50 * 180e3 * math.log2(1 + p_w * beta / noise_w)
    assert mc.rate_bps(0) == pytest.approx(rate, rel=1e-12)
    tx = mc.transfer(8e6, 0.0)
    assert tx.duration_s == pytest.approx(8e6 / rate, rel=1e-12)
    assert tx.energy_j == pytest.approx(10 ** ((ch.bs_power_dbm - 30) / 10) * tx.duration_s)


def test_separate_downlink_band():
    sc = scenario_from_dict({"clients": {"count": 4},
                             "channel": {"downlink_n_subchannels": 100, "downlink_subchannel_bandwidth_hz": 360e3}})
    for r in build_radio(sc):
        assert len(r.downlink.subchannels) == 25 and r.downlink.fading.n_subchannels == 100
        assert np.all(r.downlink.bandwidth_hz == 360e3)
        assert r.downlink.fading is not r.uplink.fading
    with pytest.raises(ScenarioError, match="channel.downlink_n_subchannels"):
        scenario_from_dict({"clients": {"count": 4}, "channel": {"downlink_n_subchannels": 3}})


def test_device_energy_per_flop_models():
    sc = scenario_from_dict({"clients": {"count": 2}, "energy": {"device_j_per_flop": [1e-11, 2e-11]}})
    assert device_j_per_flop(sc) == [1e-11, 2e-11]
    sc = scenario_from_dict({"clients": {"count": 1}, "energy": {"compute_model": "kappa"},
                             "compute": {"client_flops_per_s": None, "client_clock_hz": 2e9,
                                         "client_flops_per_cycle": 256}})
    assert device_j_per_flop(sc)[0] == pytest.approx(1e-28 * 2e9**2 / 256)  # kappa f^2 per cycle / FLOPs per cycle
    assert channel.transmit_energy_j(0.2, 3.0, 0.1) == pytest.approx(0.9)


def test_optimize_reports_energy_and_the_optimizer_honours_a_budget():
    from cosim.optimize import format_policies, optimize_scenario
    from cosim.profile import read_profile

    costs = read_profile("experiments/fedsllm/smollm2_profile.json")["costs"]
    sc = scenario_from_dict({"clients": {"count": 4}, "split": {"cut_layer": 3}, "lora": {"rank": 8}})
    free = optimize_scenario(sc, costs)
    for name, p in free["policies"].items():
        assert len(p["energy_j_per_client"]) == 4 and p["round_energy_j"] > 0
        assert p["total_energy_j"] == pytest.approx(p["rounds"] * p["round_energy_j"])
    assert "round J" in format_policies(free)
    energy = free["policies"]["optimizer"]["energy_j_per_client"]
    budget = 0.8 * max(energy)  # binds for the hungriest device
    capped = optimize_scenario(scenario_from_dict({**{"clients": {"count": 4}, "split": {"cut_layer": 3},
                                                      "lora": {"rank": 8}}, "energy": {"budget_j": budget}}), costs)
    p = capped["policies"]["optimizer"]
    assert max(p["energy_j_per_client"]) <= budget * (1 + 1e-9)
    assert p["total_delay_s"] >= free["policies"]["optimizer"]["total_delay_s"] * (1 - 1e-9)


def _replay_run(tmp_path, *sets):
    import json

    import pandas as pd

    from cosim.run import run_scenario
    from cosim.scenario import load_scenario

    sc = load_scenario("scenarios/quickstart.yaml", overrides=[
        "workload.kind=replay", "workload.profile=experiments/fedsllm/smollm2_profile.json", "training.rounds=2",
        "training.local_iterations=2", *sets])
    out = tmp_path / "run"
    run_scenario(sc, out)
    summary = json.loads((out / "summary.json").read_text())
    return sc, pd.read_parquet(out / "events.parquet"), pd.read_parquet(out / "clients.parquet"), summary


def test_every_event_carries_its_energy_by_hand(tmp_path):
    sc, ev, clients, summary = _replay_run(tmp_path, "energy.device_j_per_flop=[1e-11, 2e-11, 3e-11, 4e-11]",
                                           "energy.device_circuit_power_w=0.05")
    dev = ev[ev.kind.isin(["client_forward", "client_backward"])]
    np.testing.assert_allclose(dev.energy_j, dev.flops * (dev.client + 1) * 1e-11, rtol=1e-12)
    srv = ev[ev.kind == "server_step"]
    np.testing.assert_allclose(srv.energy_j, srv.flops * 4e-12, rtol=1e-12)
    up = ev[ev.kind.isin(["uplink", "adapter_upload"])]
    np.testing.assert_allclose(up.energy_j, (up.power_w + 0.05) * up.duration_s, rtol=1e-12)
    assert (up.energy_of == "device").all() and up.distance_m.notna().all()
    down = ev[ev.kind.isin(["downlink", "broadcast"])]
    np.testing.assert_allclose(down.energy_j, down.power_w * down.duration_s, rtol=1e-12)
    assert (down.energy_of == "base_station").all()
    # clients.parquet: each device's energy per round is its events' sum; summary.json: the totals.
    mine = ev[ev.energy_of == "device"].groupby(["round", "client"]).energy_j.sum()
    got = clients.set_index(["round", "client"]).energy_j
    np.testing.assert_allclose(got.loc[mine.index], mine, rtol=1e-12)
    np.testing.assert_allclose(clients.transmit_energy_j.sum(), up.energy_j.sum(), rtol=1e-12)
    e = summary["energy"]
    assert e["devices_j"] == pytest.approx(ev[ev.energy_of == "device"].energy_j.sum())
    assert e["per_device_j"] == pytest.approx(list(ev[ev.energy_of == "device"].groupby("client").energy_j.sum()))
    assert e["servers_j"] == pytest.approx(ev[ev.energy_of == "server"].energy_j.sum())
    assert e["retransmissions"] == 0  # Shannon: no block errors


def test_mcs_retransmissions_and_the_multicast_in_the_trace(tmp_path):
    sc, ev, _, summary = _replay_run(tmp_path, "link.rate_model=mcs", "channel.broadcast=multicast",
                                     "channel.pathloss_model=uma")
    tx = ev[ev.kind.isin(["uplink", "downlink", "adapter_upload", "broadcast"])]
    assert tx.retransmissions.sum() > 0 and summary["energy"]["retransmissions"] == tx.retransmissions.sum()
    for _, b in ev[ev.kind == "broadcast"].groupby("round"):
        assert b.duration_s.nunique() == 1 and b.t_start_s.nunique() == 1  # one transmission for all
        assert b.n_subchannels.iloc[0] == 50
        bs_w = 10 ** ((sc.channel.bs_power_dbm - 30) / 10)
        assert b.energy_j.sum() == pytest.approx(bs_w * b.duration_s.iloc[0])
