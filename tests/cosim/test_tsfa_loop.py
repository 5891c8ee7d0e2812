"""TSFA's online stage in the simulator's loop: a long run on a fading channel keeps the latency budget."""

from pathlib import Path

import numpy as np
import pytest

from cosim.build import build_simulation
from cosim.scenario import load_scenario
from cosim.workload import Evaluation, Step, StepCost, Upload, done

QUICKSTART = Path(__file__).resolve().parents[2] / "scenarios" / "quickstart.yaml"
STEP_FLOPS = 2e11
DENSE_BYTES = 4_000_000


class ReplayedFedWorkload:
    """Measured-looking constants: a step's FLOPs, the dense adapter, uploads shrinking with the sparsity."""

    def __init__(self, k):
        self.n_clients, self.rank = k, 8

    def sample_counts(self):
        return [100, 200, 300, 400][: self.n_clients]

    def local_step(self, client):
        return done(StepCost(flops=STEP_FLOPS, loss=1.0))

    def upload(self, client, sparsity):
        return Upload(nbytes=int(np.ceil((1 - sparsity) * DENSE_BYTES)), sparsity=sparsity)

    def cancel(self, client):
        pass

    def aggregate(self, weights) -> Step:
        return done(StepCost(flops=2.0 * len(weights) * DENSE_BYTES / 4, nbytes=DENSE_BYTES))

    def evaluate(self):
        return Evaluation(accuracy=float("nan"), loss=float("nan"), n=0)

    def step_flops(self):
        return STEP_FLOPS

    def dense_nbytes(self):
        return DENSE_BYTES


def long_run(budget_s, rounds=300, v=1.0):
    sc = load_scenario(QUICKSTART, overrides=[
        "strategy.name=tsfa", f"tsfa.latency_budget_s={budget_s}", f"tsfa.v={v}", "tsfa.rank=8",
        "training.local_iterations=2", f"training.rounds={rounds}", "model.name=tiny-llama",
        "compute.client_flops_per_s=[0.5e12, 1e12, 1.5e12, 2e12]", "channel.coherence_s=0.5"])
    fed = build_simulation(sc, ReplayedFedWorkload(sc.clients.count))
    fed.run()
    rec = fed.sim.rec
    return rec.rounds(), rec.clients(), fed.strategy.policy


@pytest.fixture(scope="module")
def dense_latency():
    rounds, _, _ = long_run(1e6, rounds=20)   # a budget never binding: Q stays 0, rho = rho_min = 0
    return float(rounds["duration_s"].mean())


@pytest.mark.parametrize("fraction", [0.65, 0.8])
def test_the_average_latency_keeps_the_budget(dense_latency, fraction):
    # Budgets between the least latency (about 0.55 x dense here: the dense broadcast and the slowest
    # device's compute stay) and the dense latency.
    budget = fraction * dense_latency
    rounds, clients, policy = long_run(budget)
    lat = rounds["duration_s"].to_numpy()
    q_end = rounds["virtual_queue"].iloc[-1]
    assert lat.mean() <= budget + q_end / len(lat) + 1e-9         # the queue's own bound, exactly
    assert lat.mean() <= budget * 1.03                            # and in practice, after 300 rounds
    assert rounds["sparsity"].mean() > 0                          # it had to sparsify to get there
    # the queue column is the rule applied to the realised latencies
    q = 0.0
    for x, recorded in zip(lat, rounds["virtual_queue"]):
        q = max(q + x - budget, 0.0)
        assert recorded == pytest.approx(q, abs=1e-9)


def test_a_tighter_budget_sparsifies_more(dense_latency):
    loose, _, _ = long_run(0.8 * dense_latency, rounds=150)
    tight, _, _ = long_run(0.65 * dense_latency, rounds=150)
    assert tight["sparsity"].mean() > loose["sparsity"].mean()
    assert tight["duration_s"].mean() < loose["duration_s"].mean()


def test_with_no_pressure_tsfa_sends_dense(dense_latency):
    rounds, clients, _ = long_run(1e6, rounds=5)
    assert (clients["sparsity"] == 0).all() and (rounds["virtual_queue"] == 0).all()
