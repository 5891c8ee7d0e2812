"""A run's needs estimated before it starts (issue 13, item 3b): events, trace rows, memory; and the refusal
of a scenario that cannot fit this machine's memory, before anything is written."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from _fake import simulate
from _hostile import cli
from cosim.needs import available_memory_bytes, estimate_needs, memory_problem
from cosim.scenario import load_scenario, scenario_from_dict
from cosim.scenario.schema import Workload

TINY = {"model": {"name": "tiny-llama"}, "split": {"cut_layer": 2}, "clients": {"count": 3},
        "training": {"rounds": 2, "local_iterations": 3}}
HUGE = ["--set", "clients.count=1000000", "--set", "channel.n_subchannels=1000000", "--set", "training.rounds=10000",
        "--set", "compute.client_flops_per_s=1e12"]


def test_estimate_of_a_small_scenario_is_the_hand_calculation():
    needs = estimate_needs(scenario_from_dict(TINY))
    # 2 rounds x 3 clients, each 3 iterations x 6 split events + download, upload, broadcast; 2 per round.
    assert needs.events == 6 * (3 * 6 + 3) + 2 * 2 == 130
    assert (needs.client_rows, needs.round_rows, needs.trace_rows) == (6, 2, 138)
    assert needs.trace_bytes == 130 * 1000 + 6 * 1700 + 2 * 2000
    # 3 clients with Rayleigh fading on 50 subchannels, and two cached chunks of 256 blocks per subchannel.
    assert needs.fading_bytes == 3 * (200_000 + 8 * 50) + 2 * 256 * 16 * 50
    # tiny-llama: 4 blocks of width 64 in float32; LoRA rank 8 on q and v: 4 x 2 x 2 x 8 x 64 weights, 12 B each.
    assert needs.model_bytes == 12 * 4 * 64 * 64 * 4 + 3 * 12 * (4 * 2 * 2 * 8 * 64)
    assert needs.total_bytes == needs.trace_bytes + needs.fading_bytes + needs.model_bytes + 800_000_000


def test_replay_federated_and_asynchronous_counts():
    replay = dataclasses.replace(scenario_from_dict(TINY), workload=Workload(kind="replay", profile="p.json"))
    assert estimate_needs(replay).model_bytes == 0
    assert estimate_needs(replay).base_bytes == 200_000_000
    # rounds computed in one go keep rows as columns (500 B a row), event by event as tuples (1000 B)
    assert estimate_needs(replay).trace_bytes == 130 * 500 + 6 * 1700 + 2 * 2000
    deadline = dataclasses.replace(replay, aggregation=dataclasses.replace(replay.aggregation, mode="deadline",
                                                                           deadline_s=10.0))
    assert estimate_needs(deadline).trace_bytes == 130 * 1000 + 6 * 1700 + 2 * 2000
    fed = scenario_from_dict({**TINY, "strategy": {"name": "fedlora"}})
    assert estimate_needs(fed).events == 6 * (3 * 1 + 3) + 2 * 2
    fedbuff = scenario_from_dict({**TINY, "aggregation": {"mode": "fedbuff", "buffer_size": 2}})
    assert estimate_needs(fedbuff).client_rows == 2 * 2 + 3          # updates folded in + clients still at work
    half = scenario_from_dict({**TINY, "clients": {"count": 4}, "participation": {"fraction": 0.5}})
    assert estimate_needs(half).client_rows == 2 * 2
    over = scenario_from_dict({**TINY, "clients": {"count": 4}, "participation": {"fraction": 0.5},
                               "aggregation": {"mode": "over_selection", "over_selection": 1.5}})
    assert estimate_needs(over).client_rows == 2 * 3


@pytest.mark.parametrize("extra", [{}, {"aggregation": {"mode": "deadline", "deadline_s": 10.0}},
                                   {"aggregation": {"mode": "over_selection"}, "participation": {"fraction": 0.5}}, {"aggregation": {"mode": "fedasync"}},
                                   {"aggregation": {"mode": "fedbuff", "buffer_size": 2}},
                                   {"participation": {"fraction": 0.5}}, {"strategy": {"name": "sfl_v2"}}])
def test_events_of_a_simulation_are_at_most_the_estimate_and_near_it(extra):
    sc = scenario_from_dict({**TINY, "clients": {"count": 4}, "training": {"rounds": 3, "local_iterations": 2},
                             **extra})
    _, _, events, _, clients = simulate(sc)
    needs = estimate_needs(sc)
    assert len(events) <= needs.events
    assert len(events) >= 0.4 * needs.events                            # an upper bound, not a wild one
    assert len(clients) <= needs.client_rows


def test_available_memory_from_meminfo_and_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("COSIM_MEMORY_BYTES", raising=False)
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16000000 kB\nMemFree:  100 kB\nMemAvailable:    8000000 kB\n")
    assert available_memory_bytes(meminfo) == 8_000_000 * 1024
    monkeypatch.setenv("COSIM_MEMORY_BYTES", "2e9")
    assert available_memory_bytes(meminfo) == 2_000_000_000


def test_a_scenario_over_the_memory_is_refused_naming_the_settings():
    sc = scenario_from_dict({**TINY, "clients": {"count": 1000}, "channel": {"n_subchannels": 1000},
                             "training": {"rounds": 1000, "local_iterations": 3}})
    needs = estimate_needs(sc)
    assert memory_problem(sc, needs, needs.total_bytes) is None          # exactly fits: accepted
    problem = memory_problem(sc, needs, needs.total_bytes - 1)
    assert "more than the" in problem and "available" in problem
    assert "training.rounds (1000)" in problem and "clients.count (1000)" in problem
    assert memory_problem(sc, needs, None) is None                       # nothing known: nothing refused


def test_cosim_run_refuses_a_million_clients_for_ten_thousand_rounds_writing_nothing(tmp_path):
    out = tmp_path / "out"
    code, _, err = cli(["run", "scenarios/quickstart.yaml", "--out", str(out), "--quiet", *HUGE])
    assert code == 2
    assert "Traceback" not in err
    (line,) = err.splitlines()
    assert line.startswith("cosim: error: scenarios/quickstart.yaml: needs about ")
    assert " TB of memory" in line and "available here" in line
    for setting in ("training.rounds (10000)", "clients.count (1000000)", "training.local_iterations (6)"):
        assert setting in line
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_cosim_validate_prints_the_needs_and_refuses_what_cannot_fit(monkeypatch):
    code, out, err = cli(["validate", "scenarios/quickstart.yaml"])
    assert code == 0
    assert yaml.safe_load(out)["name"] == "quickstart"
    needs = estimate_needs(load_scenario("scenarios/quickstart.yaml"))
    assert f"# needs: at most {needs.events} events, {needs.trace_rows} trace rows; memory about " in err
    monkeypatch.setenv("COSIM_MEMORY_BYTES", str(needs.total_bytes - 1))
    code, out, err = cli(["validate", "scenarios/quickstart.yaml"])
    assert (code, out) == (2, "")
    assert err.startswith("cosim: error: scenarios/quickstart.yaml: needs about ")


def test_quickstart_fits_a_4_gb_machine():
    needs = estimate_needs(load_scenario("scenarios/quickstart.yaml"))
    # Measured: about 1.7 GB peak for SmolLM2 with a few clients (README, "The real model at scale").
    assert 1.2e9 < needs.total_bytes < 2.5e9
    assert memory_problem(load_scenario("scenarios/quickstart.yaml"), needs, 4_000_000_000) is None


def test_a_local_sweep_with_a_run_that_cannot_fit_is_refused_before_any_run(tmp_path, monkeypatch):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({**TINY, "workload": {"kind": "real"}}))
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({"base": "base.yaml",
                                                         "grid": {"training.rounds": [1, 100000]}}))
    monkeypatch.setenv("COSIM_MEMORY_BYTES", "3e9")
    out = tmp_path / "out"
    code, _, err = cli(["sweep", str(tmp_path / "sweep.yaml"), "--out", str(out), "--quiet"])
    assert code == 2
    (line,) = err.splitlines()
    assert line.startswith(f"cosim: error: {tmp_path / 'sweep.yaml'}: run ")
    assert "training.rounds=100000" in line and "training.rounds (100000)" in line
    assert not out.exists()
