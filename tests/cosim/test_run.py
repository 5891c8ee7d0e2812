"""``cosim run`` end to end with the real split-LoRA workload (a tiny random Llama for speed)."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from cosim.cli import main
from cosim.analysis import critical_path, load_run

TINY = [
    "--set", "model.name=tiny-llama", "--set", "split.cut_layer=2", "--set", "clients.count=3",
    "--set", "training.rounds=2", "--set", "training.local_iterations=2", "--set", "training.seq_len=32",
    "--set", "data.test_size=8", "--set", "data.max_train=200", "--set", "training.eval_every=1",
    "--set", "compute.client_flops_per_s=[0.5e12, 1e12, 2e12]",
]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "tiny"
    assert main(["run", "scenarios/quickstart.yaml", "--out", str(out), "--quiet", *TINY]) == 0
    return out


def test_writes_the_four_files_with_the_documented_columns(tiny_run):
    run = load_run(tiny_run)
    for col in ("run", "round", "iteration", "client", "kind", "t_start_s", "t_end_s", "flops", "bytes",
                "rate_bps", "snr_db", "n_subchannels", "power_w", "loss"):
        assert col in run.events.columns
    assert set(run.events.kind) == {"client_forward", "uplink", "server_step", "downlink", "client_backward",
                                    "adapter_upload", "aggregate", "broadcast"} | (
        {"server_queue"} if (run.events.kind == "server_queue").any() else set())
    assert len(run.rounds) == 2 and run.rounds.accuracy.notna().all()
    assert run.rounds.accuracy.iloc[-1] == run.summary["after"]["accuracy"]
    resolved = yaml.safe_load(run.scenario_yaml)
    assert resolved["model"]["name"] == "tiny-llama" and resolved["training"]["rounds"] == 2
    assert resolved["channel"]["pathloss_intercept_db"] == 128.1   # defaults written out


def test_measured_costs_are_the_real_tensors(tiny_run):
    ev = load_run(tiny_run).events
    batch, seq, hidden = 4, 32, 64                   # quickstart batch; tiny-llama hidden size
    up = ev[ev.kind == "uplink"]
    # float32 activations + int64 mask and labels cross the cut
    assert (up.bytes == batch * seq * hidden * 4 + 2 * batch * seq * 8).all()
    assert (ev[ev.kind == "downlink"].bytes == batch * seq * hidden * 4).all()
    fwd = ev[ev.kind == "client_forward"].flops
    assert fwd.nunique() == 1 and fwd.iloc[0] > 0
    assert (ev[ev.kind == "server_step"].loss > 0).all()


def test_total_time_equals_the_critical_path(tiny_run):
    run = load_run(tiny_run)
    path = critical_path(run.events)
    assert path.duration_s.sum() == pytest.approx(run.summary["total_time_s"], rel=1e-9)
    assert run.summary["total_time_s"] == run.events.t_end_s.max()
    assert sum(run.summary["phase_time_s"].values()) == pytest.approx(run.summary["total_time_s"], rel=1e-9)


def test_same_scenario_and_seed_same_events(tiny_run, tmp_path):
    again = tmp_path / "again"
    assert main(["run", "scenarios/quickstart.yaml", "--out", str(again), "--quiet", *TINY]) == 0
    assert (again / "events.parquet").read_bytes() == (tiny_run / "events.parquet").read_bytes()
    other = tmp_path / "other"
    assert main(["run", "scenarios/quickstart.yaml", "--out", str(other), "--quiet", *TINY, "--seed", "1"]) == 0
    a, b = load_run(tiny_run).events, load_run(other).events
    assert not np.array_equal(a.t_end_s.to_numpy(), b.t_end_s.to_numpy())


def test_rerun_replaces_a_previous_run(tiny_run, tmp_path):
    out = tmp_path / "r"
    args = ["run", "scenarios/quickstart.yaml", "--out", str(out), "--quiet", *TINY]
    assert main(args) == 0
    first = json.loads((out / "summary.json").read_text())
    assert main(args + ["--set", "training.rounds=1"]) == 0
    assert json.loads((out / "summary.json").read_text())["rounds"] == 1 != first["rounds"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]   # no temporary folders left behind


def test_cut_layer_beyond_the_model_is_a_scenario_error(tmp_path, capsys):
    code = main(["run", "scenarios/quickstart.yaml", "--out", str(tmp_path / "x"), "--quiet", *TINY,
                 "--set", "split.cut_layer=4"])
    assert code == 2
    assert "split.cut_layer: expected 0 < cut_layer < 4" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_static_channel_durations_with_the_real_workload(tmp_path):
    """Fading and shadowing off at fixed distances: transfers last bits / rate, compute flops / speed."""
    import math

    out = tmp_path / "static"
    assert main(["run", "scenarios/quickstart.yaml", "--out", str(out), "--quiet", *TINY,
                 "--set", "channel.fading=none", "--set", "channel.shadowing_std_db=0",
                 "--set", "clients.placement=fixed", "--set", "clients.distances_m=[120, 300, 480]"]) == 0
    ev = load_run(out).events
    noise_w = 10 ** ((-174 + 5 - 30) / 10) * 180e3
    for k, d_m in enumerate([120, 300, 480]):
        gain = 10 ** (-(128.1 + 37.6 * math.log10(d_m / 1000)) / 10)
        n_sub = [17, 17, 16][k]                       # 50 subchannels dealt to 3 clients
        power_w = 10 ** ((23 - 30) / 10) / n_sub           # 23 dBm spread evenly
        rate = n_sub * 180e3 * math.log2(1 + power_w * gain / noise_w)
        up = ev[(ev.client == k) & ev.kind.isin(["uplink", "adapter_upload"])]
        np.testing.assert_allclose(up.duration_s, up.bytes * 8 / rate, rtol=1e-9)
        assert (up.n_subchannels == n_sub).all()
        f_k = [0.5e12, 1e12, 2e12][k]
        comp = ev[(ev.client == k) & ev.kind.isin(["client_forward", "client_backward"])]
        np.testing.assert_allclose(comp.duration_s, comp.flops / f_k, rtol=1e-12)
    srv = ev[ev.kind == "server_step"]
    np.testing.assert_allclose(srv.duration_s, srv.flops / 100e12, rtol=1e-12)
