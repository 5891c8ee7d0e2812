"""Random small instances of the joint problem, shared by the solver tests."""

from __future__ import annotations

import numpy as np
import pytest

from solver import CostTable, Problem


def random_costs(rng: np.random.Generator, n_cuts: int, n_ranks: int) -> CostTable:
    """A small cost table whose cut trades client compute against payload bytes."""
    cuts = np.arange(1, n_cuts + 1) * 2
    ranks = np.array([2, 4, 8, 16, 32])[:n_ranks]
    depth = cuts[:, None] / (2 * n_cuts + 2)  # share of the model on the client
    lora = 1 + 0.02 * ranks[None, :]
    forward = 1e11 * depth * lora * rng.uniform(0.8, 1.2, (n_cuts, 1))
    return CostTable(
        cuts=cuts, ranks=ranks,
        client_forward_flops=forward,
        client_backward_flops=2 * forward,
        server_flops=3e11 * (1 - depth) * lora,
        activation_bytes=rng.uniform(2e4, 2e5, n_cuts),
        gradient_bytes=rng.uniform(2e4, 2e5, n_cuts),
        client_adapter_bytes=2e3 * cuts[:, None] * ranks[None, :] * rng.uniform(0.5, 2, (n_cuts, 1)),
    )


def random_problem(rng: np.random.Generator, k: int, n: int, *, m: int = 0, n_cuts: int = 3,
                   n_ranks: int = 3, total: bool = False, fed_total: bool = False,
                   equal_bandwidth: bool = True) -> Problem:
    """Gains spanning tens of dB (path loss x Rayleigh), heterogeneous FLOP/s."""
    costs = random_costs(rng, n_cuts, n_ranks)
    large_scale = 10 ** rng.uniform(-12, -9, (k, 1))

    def band(width):
        if equal_bandwidth:
            return np.full(width, 1e5)
        return rng.choice([1e5, 2e5], width)

    def gains(width):
        return large_scale * rng.exponential(1.0, (k, width))

    max_power_w = rng.uniform(0.05, 0.2, k)
    fed = {}
    if m:
        fed = dict(fed_bandwidth_hz=band(m), fed_gain_lin=gains(m), fed_noise_power_w=np.full(m, 1e-14),
                   fed_total_power_w=0.4 * max_power_w.sum() if fed_total else None)
    return Problem(
        costs=costs,
        rounds_to_target=np.sort(rng.uniform(50, 200, n_ranks))[::-1],
        bandwidth_hz=band(n), gain_lin=gains(n), noise_power_w=np.full(n, 1e-14),
        device_flops_per_s=10 ** rng.uniform(11, 12.5, k), server_flops_per_s=1e14,
        downlink_rate_bps=rng.uniform(1e7, 1e8, k), max_power_w=max_power_w,
        local_iterations=int(rng.integers(1, 5)),
        total_power_w=0.4 * max_power_w.sum() if total else None,
        **fed,
    )


@pytest.fixture
def make_problem():
    """The :func:`random_problem` factory."""
    return random_problem


def independent_round_delay_s(problem: Problem, solution) -> float:
    """The round delay of a decision, recomputed here from the problem statement."""
    costs, iters = problem.costs, problem.local_iterations
    c = int(np.flatnonzero(costs.cuts == solution.cut)[0])
    r = int(np.flatnonzero(costs.ranks == solution.rank)[0])
    rate = np.array([sum(problem.bandwidth_hz[n] * np.log2(1 + solution.power_w[k, n] * problem.gain_lin[k, n]
                                                          / problem.noise_power_w[n])
                         for n in range(problem.num_subchannels)) for k in range(problem.num_clients)])
    if problem.num_fed_subchannels:
        fed_rate = np.array([sum(problem.fed_bandwidth_hz[n] * np.log2(
            1 + solution.fed_power_w[k, n] * problem.fed_gain_lin[k, n] / problem.fed_noise_power_w[n])
            for n in range(problem.num_fed_subchannels)) for k in range(problem.num_clients)])
    else:
        fed_rate = rate
    def seconds(bits, rate_bps):
        return 0.0 if bits == 0 else bits / rate_bps

    delays = []
    for k in range(problem.num_clients):
        per_iteration = ((costs.client_forward_flops[c, r] + costs.client_backward_flops[c, r])
                         / problem.device_flops_per_s[k]
                         + seconds(8 * costs.activation_bytes[c], rate[k])
                         + costs.server_flops[c, r] / problem.server_flops_per_s
                         + 8 * costs.gradient_bytes[c] / problem.downlink_rate_bps[k])
        delays.append(iters * per_iteration + seconds(8 * costs.client_adapter_bytes[c, r], fed_rate[k]))
    return max(delays)


def assert_feasible(problem: Problem, solution, rtol: float = 1e-9) -> None:
    """Every constraint of the problem, checked on the decision independently of ``evaluate``."""
    k = problem.num_clients
    assert solution.cut in problem.costs.cuts.tolist()
    assert solution.rank in problem.costs.ranks.tolist()
    pairs = [(solution.assignment, solution.power_w, problem.total_power_w)]
    if problem.num_fed_subchannels:
        pairs.append((solution.fed_assignment, solution.fed_power_w, problem.fed_total_power_w))
    for assignment, power, total in pairs:
        assert assignment.shape == (power.shape[1],)
        assert np.all((assignment >= -1) & (assignment < k))
        assert set(range(k)) <= set(assignment.tolist()), "a client holds no subchannel"
        holds = assignment[None, :] == np.arange(k)[:, None]
        assert np.all(power >= 0)
        assert np.all(power[~holds] == 0), "power on a subchannel the client does not hold"
        assert np.all(power.sum(axis=1) <= problem.max_power_w * (1 + rtol))
        if total is not None:
            assert power.sum() <= total * (1 + rtol)
    expected = independent_round_delay_s(problem, solution)
    assert solution.round_delay_s == pytest.approx(expected, rel=1e-9)
    assert solution.total_delay_s == pytest.approx(expected * problem.rounds_to_target[
        int(np.flatnonzero(problem.costs.ranks == solution.rank)[0])], rel=1e-9)


@pytest.fixture
def check_feasible():
    """The :func:`assert_feasible` checker."""
    return assert_feasible


@pytest.fixture
def small_instances():
    """60 random small instances (K <= 3, N <= 6), half with a total power limit,
    a third with unequal subchannel bandwidths; seeded, so every run sees the same."""
    instances = []
    for seed in range(60):
        rng = np.random.default_rng(1000 + seed)
        k = int(rng.integers(2, 4))
        n = int(rng.integers(k, 7))
        instances.append(random_problem(rng, k, n, total=seed % 2 == 1, equal_bandwidth=seed % 3 != 0))
    return instances
