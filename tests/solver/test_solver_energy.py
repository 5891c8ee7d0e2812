"""Energy of a decision, and the least delay under a per-device energy budget, against brute force."""

import dataclasses

import numpy as np
import pytest

from cosim.errors import InfeasibleError
from solver import brute_force, equal_allocation, evaluate, solve
from solver.objective import compute_energy_j

GAP = 0.02


def _energy_by_hand(problem, sol):
    """Each device's energy in a round, from the problem statement (independent of ``evaluate``)."""
    costs, iters = problem.costs, problem.local_iterations
    c = int(np.flatnonzero(costs.cuts == sol.cut)[0])
    r = int(np.flatnonzero(costs.ranks == sol.rank)[0])
    out = []
    for k in range(problem.num_clients):
        rate = sum(problem.bandwidth_hz[n] * np.log2(1 + sol.power_w[k, n] * problem.gain_lin[k, n]
                                                     / problem.noise_power_w[n])
                   for n in range(problem.num_subchannels))
        bits = 8 * (iters * costs.activation_bytes[c] + costs.client_adapter_bytes[c, r])
        flops = iters * (costs.client_forward_flops[c, r] + costs.client_backward_flops[c, r])
        out.append(flops * problem.device_j_per_flop[k]
                   + (sol.power_w[k].sum() + problem.circuit_power_w[k]) * bits / rate)
    return np.array(out)


def _budgeted(seed):
    """A small instance whose budgets cut a random share of the transmit energy of its free optimum."""
    from conftest import random_problem

    rng = np.random.default_rng(700 + seed)
    k = int(rng.integers(2, 4))
    n = int(rng.integers(k, 7))
    p = random_problem(rng, k, n, equal_bandwidth=seed % 3 != 0)
    p = dataclasses.replace(p, device_j_per_flop=np.full(k, 1e-11), circuit_power_w=0.05 if seed % 2 else 0.0)
    free = brute_force(p)
    compute = compute_energy_j(p, p.cut_index(free.cut), p.rank_index(free.rank))
    budget = compute + (free.energy_j - compute) * rng.uniform(0.1, 0.9, k)
    return dataclasses.replace(p, energy_budget_j=budget), free


def test_energy_of_a_decision_is_compute_plus_power_times_time(make_problem):
    p = make_problem(np.random.default_rng(1), 3, 5)
    p = dataclasses.replace(p, device_j_per_flop=np.array([1e-11, 2e-11, 5e-12]), circuit_power_w=0.1)
    sol = equal_allocation(p, int(p.costs.cuts[1]), int(p.costs.ranks[0]))
    np.testing.assert_allclose(sol.energy_j, _energy_by_hand(p, sol), rtol=1e-9)
    # Transmit energy alone: P x (uplink + adapter time) when no J/FLOP and no circuit power are given.
    bare = evaluate(make_problem(np.random.default_rng(1), 3, 5), sol.assignment, sol.power_w, sol.cut, sol.rank)
    np.testing.assert_allclose(bare.energy_j, sol.power_w.sum(axis=1) * (bare.delays.uplink_s + bare.delays.adapter_s))


def test_optimizer_meets_the_budget_and_matches_brute_force():
    gaps = []
    for seed in range(24):
        p, free = _budgeted(seed)
        try:
            exact = brute_force(p)
        except InfeasibleError:
            continue
        found = solve(p)
        for sol in (exact, found):
            energy = _energy_by_hand(p, sol)
            assert np.all(energy <= p.energy_budget_j * (1 + 1e-9))
            np.testing.assert_allclose(sol.energy_j, energy, rtol=1e-9)
        assert exact.total_delay_s >= free.total_delay_s * (1 - 1e-9)  # a budget never speeds things up
        assert found.total_delay_s >= exact.total_delay_s * (1 - 1e-9)
        gaps.append(found.total_delay_s / exact.total_delay_s - 1)
    assert len(gaps) >= 15
    assert max(gaps) <= GAP


def test_a_loose_budget_changes_nothing():
    p, free = _budgeted(3)
    loose = dataclasses.replace(p, energy_budget_j=free.energy_j * 10)
    assert brute_force(loose).total_delay_s == pytest.approx(free.total_delay_s, rel=1e-9)
    assert solve(loose).total_delay_s <= free.total_delay_s * (1 + GAP)


def test_an_impossible_budget_is_refused_by_name():
    p, _ = _budgeted(2)
    tiny = dataclasses.replace(p, energy_budget_j=np.full(p.num_clients, 1e-6))
    with pytest.raises(InfeasibleError, match="energy budget"):
        solve(tiny)
    with pytest.raises(InfeasibleError, match="energy budget"):
        brute_force(tiny)


def test_energy_budget_needs_the_shared_pool(make_problem):
    p = make_problem(np.random.default_rng(2), 2, 4, m=2)
    with pytest.raises(ValueError, match="energy_budget_j"):
        solve(dataclasses.replace(p, energy_budget_j=1.0))
