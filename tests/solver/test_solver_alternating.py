"""The alternating optimizer: monotone history, closed-form optimum, baselines, constraints."""

import dataclasses

import numpy as np
import pytest

from solver import (POLICIES, CostTable, Problem, equal_allocation, optimize_resources, optimize_split_rank,
                    random_allocation, solve)


def _instances(make_problem):
    """Random instances of every kind: one pool or two sets, with and without totals."""
    rng = np.random.default_rng(77)
    kinds = [dict(), dict(total=True), dict(equal_bandwidth=False), dict(m=4), dict(m=4, total=True)]
    return [make_problem(rng, int(rng.integers(2, 5)), int(rng.integers(5, 9)), n_cuts=3, n_ranks=3, **kind)
            for kind in kinds for _ in range(3)]


def test_history_never_increases(make_problem):
    for problem in _instances(make_problem):
        solution = solve(problem)
        history = np.array(solution.objective_history_s)
        assert np.all(np.diff(history) <= 0)
        assert history[0] == pytest.approx(optimize_split_rank(problem).total_delay_s, rel=1e-12)  # the start
        assert history[-1] == solution.total_delay_s
        assert len(history) == solution.iterations + 1


def _symmetric_problem(k, per_client, total_power_w=None):
    """K identical clients, K x per_client identical subchannels."""
    costs = CostTable(cuts=[2, 4, 8], ranks=[4, 16],
                      client_forward_flops=[[2e10, 2.4e10], [4e10, 4.8e10], [8e10, 9.6e10]],
                      client_backward_flops=[[4e10, 5e10], [8e10, 1e11], [1.6e11, 2e11]],
                      server_flops=[[3e11, 3.2e11], [2.4e11, 2.6e11], [1e11, 1.2e11]],
                      activation_bytes=[4e5, 2e5, 1e5], gradient_bytes=[4e5, 2e5, 1e5],
                      client_adapter_bytes=[[2e4, 8e4], [4e4, 1.6e5], [8e4, 3.2e5]])
    n = k * per_client
    return Problem(costs=costs, rounds_to_target=[300.0, 240.0], bandwidth_hz=1.8e5,
                   gain_lin=np.full((k, n), 3e-11), noise_power_w=1e-14, device_flops_per_s=1e12,
                   server_flops_per_s=1e14, downlink_rate_bps=5e7, max_power_w=0.2, local_iterations=4,
                   total_power_w=total_power_w)


@pytest.mark.parametrize("k, per_client, total_power_w", [(3, 2, None), (2, 3, None), (3, 2, 0.3)])
def test_symmetric_instance_reaches_the_closed_form(k, per_client, total_power_w):
    problem = _symmetric_problem(k, per_client, total_power_w)
    # Closed form: an equal split of subchannels, equal power P/m on each of the m.
    power_each_w = 0.2 if total_power_w is None else min(0.2, total_power_w / k)
    snr = 3e-11 / 1e-14
    rate = per_client * 1.8e5 * np.log2(1 + power_each_w / per_client * snr)
    costs, best = problem.costs, np.inf
    for c in range(3):
        for r in range(2):
            per_iteration = ((costs.client_forward_flops[c, r] + costs.client_backward_flops[c, r]) / 1e12
                             + costs.server_flops[c, r] / 1e14 + 8 * costs.gradient_bytes[c] / 5e7
                             + 8 * costs.activation_bytes[c] / rate)
            round_s = 4 * per_iteration + 8 * costs.client_adapter_bytes[c, r] / rate
            best = min(best, problem.rounds_to_target[r] * round_s)
    solution = solve(problem)
    assert solution.total_delay_s == pytest.approx(best, rel=1e-9)
    assert np.bincount(solution.assignment).tolist() == [per_client] * k
    held = solution.power_w[solution.power_w > 0]
    np.testing.assert_allclose(held, power_each_w / per_client, rtol=1e-6)


def test_optimizer_is_never_worse_than_any_baseline(make_problem):
    rng = np.random.default_rng(5)
    for problem in _instances(make_problem):
        best = solve(problem).total_delay_s
        for cut in problem.costs.cuts:
            for rank in problem.costs.ranks:
                cut, rank = int(cut), int(rank)
                assert best <= equal_allocation(problem, cut, rank).total_delay_s * (1 + 1e-12)
                assert best <= random_allocation(problem, cut, rank, rng).total_delay_s * (1 + 1e-12)
                assert best <= optimize_resources(problem, cut, rank).total_delay_s * (1 + 1e-12)
        assert best <= optimize_split_rank(problem).total_delay_s * (1 + 1e-12)


def test_no_policy_violates_a_constraint(make_problem, check_feasible):
    for problem in _instances(make_problem):
        cut, rank = int(problem.costs.cuts[-1]), int(problem.costs.ranks[0])
        for name, policy in POLICIES.items():
            solution = policy(problem, cut=cut, rank=rank, rng=np.random.default_rng(1))
            check_feasible(problem, solution)
            assert solution.policy == name
            if name in ("equal", "random", "resources_only"):
                assert (solution.cut, solution.rank) == (cut, rank)


def test_results_are_reproducible(make_problem):
    problem = make_problem(np.random.default_rng(9), 3, 7, total=True)
    first, second = solve(problem), solve(problem)
    np.testing.assert_array_equal(first.assignment, second.assignment)
    np.testing.assert_array_equal(first.power_w, second.power_w)
    assert first.objective_history_s == second.objective_history_s


def test_a_larger_instance_beats_the_conventional_setting(make_problem, check_feasible):
    problem = make_problem(np.random.default_rng(11), 20, 50, n_cuts=5, n_ranks=3)
    solution = solve(problem)
    check_feasible(problem, solution)
    equal = equal_allocation(problem, int(problem.costs.cuts[2]), int(problem.costs.ranks[1]))
    assert solution.total_delay_s < 0.9 * equal.total_delay_s


@pytest.mark.parametrize("kwargs, message", [(dict(tol=-1.0), r"tol: expected a number in \[0, 1\) \(got -1.0\)"),
                                             (dict(max_iter=0), r"max_iter: expected an integer >= 1 \(got 0\)"),
                                             (dict(starts=1.5), r"starts: expected an integer >= 1 \(got 1.5\)")])
def test_bad_arguments_name_themselves(make_problem, kwargs, message):
    with pytest.raises(ValueError, match=message):
        solve(make_problem(np.random.default_rng(0), 2, 3), **kwargs)


def test_one_iteration_is_enough_to_stop(make_problem):
    problem = dataclasses.replace(make_problem(np.random.default_rng(3), 3, 6), local_iterations=2)
    solution = solve(problem, max_iter=1)
    assert solution.iterations == 1 and len(solution.objective_history_s) == 2


@pytest.mark.parametrize("m", [0, 3])
def test_nothing_to_send_costs_no_power(make_problem, check_feasible, m):
    problem = make_problem(np.random.default_rng(8), 3, 5, m=m, total=True)
    costs = dataclasses.replace(problem.costs, activation_bytes=0 * problem.costs.activation_bytes,
                                client_adapter_bytes=0 * problem.costs.client_adapter_bytes)
    problem = dataclasses.replace(problem, costs=costs)
    solution = solve(problem)
    check_feasible(problem, solution)
    assert solution.power_w.sum() == 0 and solution.fed_power_w.sum() == 0
    np.testing.assert_array_equal(solution.delays.uplink_s + solution.delays.adapter_s, 0.0)
