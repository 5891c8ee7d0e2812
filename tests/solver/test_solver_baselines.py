"""Baselines: the conventional setting's structure and the guarantees between them."""

import dataclasses

import numpy as np
import pytest

from solver import equal_allocation, optimize_resources, optimize_split_rank, random_allocation


def test_equal_allocation_is_contiguous_blocks_with_equal_power(make_problem):
    problem = make_problem(np.random.default_rng(4), 3, 8)
    solution = equal_allocation(problem, 4, 4)
    assert solution.assignment.tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    for k, count in enumerate([3, 3, 2]):
        held = solution.power_w[k, solution.assignment == k]
        np.testing.assert_allclose(held, problem.max_power_w[k] / count)
    assert (solution.cut, solution.rank, solution.policy) == (4, 4, "equal")


def test_equal_power_scales_down_to_the_total(make_problem):
    problem = make_problem(np.random.default_rng(4), 3, 6)
    problem = dataclasses.replace(problem, total_power_w=0.5 * problem.max_power_w.sum())
    solution = equal_allocation(problem, 2, 2)
    np.testing.assert_allclose(solution.power_w.sum(axis=1), 0.5 * problem.max_power_w)


def test_random_allocation_gives_every_client_a_subchannel(make_problem):
    problem = make_problem(np.random.default_rng(4), 4, 5, m=4)
    for seed in range(20):
        solution = random_allocation(problem, 2, 2, np.random.default_rng(seed))
        assert set(solution.assignment.tolist()) == {0, 1, 2, 3}
        assert set(solution.fed_assignment.tolist()) == {0, 1, 2, 3}


def test_guarantees_between_baselines(make_problem):
    for seed in range(6):
        problem = make_problem(np.random.default_rng(seed), 3, 6, total=seed % 2 == 1)
        split_rank = optimize_split_rank(problem)
        np.testing.assert_array_equal(split_rank.assignment, [0, 0, 1, 1, 2, 2])  # equal resources
        for cut in problem.costs.cuts:
            for rank in problem.costs.ranks:
                equal = equal_allocation(problem, int(cut), int(rank))
                assert split_rank.total_delay_s <= equal.total_delay_s * (1 + 1e-12)
                resources = optimize_resources(problem, int(cut), int(rank))
                assert resources.total_delay_s <= equal.total_delay_s * (1 + 1e-12)
                assert (resources.cut, resources.rank) == (cut, rank)


def test_baselines_check_their_cut_and_rank(make_problem):
    problem = make_problem(np.random.default_rng(4), 2, 4)
    with pytest.raises(ValueError, match=r"rank: expected one of \[2, 4, 8\] \(got 3\)"):
        optimize_resources(problem, 2, 3)
