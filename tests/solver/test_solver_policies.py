"""The policy registry a scenario picks from by name."""

import numpy as np
import pytest

from solver import POLICIES, get_policy, solve


def test_registry_names_and_uniform_signature(make_problem):
    assert sorted(POLICIES) == ["equal", "optimizer", "random", "resources_only", "split_rank_only"]
    problem = make_problem(np.random.default_rng(2), 2, 4)
    for name in POLICIES:
        solution = get_policy(name)(problem, cut=int(problem.costs.cuts[0]), rank=int(problem.costs.ranks[0]),
                                    rng=np.random.default_rng(0))
        assert solution.policy == name
    optimizer = get_policy("optimizer")(problem, cut=None, rank=None, rng=None)
    assert optimizer.total_delay_s == solve(problem).total_delay_s
    with pytest.raises(TypeError):
        POLICIES["extra"] = POLICIES["equal"]  # read-only


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"policy: expected one of \['equal', 'optimizer', 'random', "
                                         r"'resources_only', 'split_rank_only'\] \(got 'greedy'\)"):
        get_policy("greedy")


@pytest.mark.parametrize("name", ["equal", "random", "resources_only"])
def test_fixed_cut_policies_need_a_cut_and_rank(make_problem, name):
    problem = make_problem(np.random.default_rng(2), 2, 4)
    with pytest.raises(ValueError, match=f"policy '{name}': expected a cut and a rank"):
        get_policy(name)(problem, cut=None, rank=4, rng=np.random.default_rng(0))


def test_random_policy_needs_a_generator(make_problem):
    problem = make_problem(np.random.default_rng(2), 2, 4)
    with pytest.raises(ValueError, match=r"rng: expected a numpy.random.Generator \(got None\)"):
        get_policy("random")(problem, cut=2, rank=2, rng=None)
    first = get_policy("random")(problem, cut=2, rank=2, rng=np.random.default_rng(4))
    again = get_policy("random")(problem, cut=2, rank=2, rng=np.random.default_rng(4))
    np.testing.assert_array_equal(first.assignment, again.assignment)  # the caller's stream decides
