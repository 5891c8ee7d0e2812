"""The replay computed round by round in one go equals the clock's event-by-event run, row for row."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cosim import fastreplay
from cosim.build import build_simulation
from cosim.scenario import load_scenario
from cosim.workloads.replay import ReplayWorkload

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "experiments" / "fedsllm" / "smollm2_profile.json"
BASE = ["workload.kind=replay", f"workload.profile={PROFILE}", "training.rounds=3", "training.local_iterations=3"]
KEY = ["round", "client", "iteration", "kind", "t_start_s"]


def simulate(overrides, fast):
    sc = load_scenario(ROOT / "scenarios" / "quickstart.yaml", overrides=[*BASE, *overrides])
    wl = ReplayWorkload.from_scenario(sc)
    fed = build_simulation(sc, wl, fast_replay=fast)
    assert (fed.fast is not None) == (fast and fastreplay.applies(sc, wl))
    total = fed.run()
    rec = fed.sim.rec
    return total, rec.events(), rec.rounds(), rec.clients(), fed


@pytest.mark.parametrize("overrides", [
    [],                                                                     # Rayleigh fading, 4 clients
    ["clients.count=12", "channel.n_subchannels=24", "compute.client_flops_per_s=2e12",
     "compute.server_flops_per_s=2e12"],                                    # a busy main server: queueing
    ["clients.count=10", "channel.n_subchannels=20", "compute.client_flops_per_s=1e12",
     "compute.server_flops_per_s=2e10"],                                    # waits of ~50 s in the
    # queue: a client's next transfer lies hundreds of fading blocks past its last (the timeline's window moves on)
    ["channel.fading=none", "channel.shadowing_std_db=0", "clients.count=6", "compute.client_flops_per_s=1e12"],   # static links
    ["strategy.name=sfl_v2", "channel.fading=tdl", "allocation.policy=resources_only"],
])
def test_fast_rounds_equal_the_event_by_event_run(overrides):
    t_fast, ev_fast, r_fast, c_fast, fed = simulate(overrides, True)
    t_slow, ev_slow, r_slow, c_slow, _ = simulate(overrides, False)
    assert fed.fast is not None
    assert t_fast == pytest.approx(t_slow, rel=1e-12)
    a = ev_fast.sort_values(KEY, kind="stable").reset_index(drop=True)
    b = ev_slow.sort_values(KEY, kind="stable").reset_index(drop=True)
    assert len(a) == len(b) and (a.kind.values == b.kind.values).all()
    if "compute.server_flops_per_s=2e12" in overrides:  # the busy server: the queue must be right too
        assert (a.kind == "server_queue").sum() > 10
    for col in a.columns:
        if a[col].dtype.kind == "f":
            np.testing.assert_allclose(a[col].to_numpy(), b[col].to_numpy(), rtol=1e-9, atol=1e-12, err_msg=col)
        else:
            assert (a[col].values == b[col].values).all(), col
    for x, y in ((r_fast, r_slow), (c_fast, c_slow)):
        pd.testing.assert_frame_equal(x, y, check_exact=False, rtol=1e-9)
    # the rows come in the order their events end, like the clock writes them
    assert (np.diff(ev_fast.t_end_s.to_numpy()) >= -1e-12).all()


@pytest.mark.parametrize("option", ["aggregation.mode=deadline", "participation.fraction=0.5",
                                    "availability.model=on_off", "compute.server_slots=2", "link.rate_model=mcs",
                                    "strategy.name=sl"])
def test_options_a_round_could_observe_keep_the_clock(option):
    extra = {"aggregation.mode=deadline": ["aggregation.deadline_s=3"]}.get(option, [])
    sc = load_scenario(ROOT / "scenarios" / "quickstart.yaml", overrides=[*BASE, option, *extra])
    assert not fastreplay.applies(sc, ReplayWorkload.from_scenario(sc))
