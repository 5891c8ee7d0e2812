"""Baselines the joint optimizer is compared with, scored by the same objective.

- :func:`equal_allocation`: the conventional setting. Subchannels dealt in
  contiguous equal blocks (client k gets ``n`` with ``floor(n K / N) = k``), each
  client's power ``P_k^max`` split equally over its subchannels, fixed cut and rank.
- :func:`random_allocation`: subchannels dealt at random (each client at least
  one), equal power, fixed cut and rank.
- :func:`optimize_resources`: subchannels and power optimised (greedy assignment
  + optimal power control), fixed cut and rank.
- :func:`optimize_split_rank`: cut and rank optimised (exhaustive grid) with the
  equal subchannels and power of :func:`equal_allocation`.

With a total power limit the equal powers are scaled down by the same factor
``min(1, P_total / sum_k P_k^max)`` so that the baseline stays feasible.
"""

from __future__ import annotations

import numpy as np

from solver.links import build_links
from solver.objective import evaluate, round_terms
from solver.power import optimal_power
from solver.problem import Problem, require_feasible
from solver.resources import assignment_step
from solver.solution import Solution
from solver.split_rank import best_split_rank_fixed_rates


def contiguous_assignment(num_clients: int, width: int) -> np.ndarray:
    """(width,) int: equal contiguous blocks, ``floor(n K / width)``; sizes differ by <= 1."""
    return (np.arange(width) * num_clients) // width if width else np.zeros(0, dtype=np.int64)


def equal_budgets_w(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """(K,) main and federated power budgets: ``P_k^max`` scaled to fit the totals."""
    limit = problem.max_power_w

    def scaled(total):
        return limit if total is None else limit * min(1.0, total / limit.sum())

    return scaled(problem.total_power_w), scaled(problem.fed_total_power_w)


def _equal_power(assignment: np.ndarray, budget_w: np.ndarray) -> np.ndarray:
    """(K, W): ``budget_k / n_k`` on each subchannel client k holds."""
    k = budget_w.size
    holds = assignment[None, :] == np.arange(k)[:, None]
    counts = np.maximum(holds.sum(axis=1), 1)
    return np.where(holds, (budget_w / counts)[:, None], 0.0)


def _evaluate_equal_power(problem: Problem, assignment, fed_assignment, cut, rank, policy) -> Solution:
    budget, fed_budget = equal_budgets_w(problem)
    fed = None if problem.num_fed_subchannels == 0 else fed_assignment
    fed_power = None if fed is None else _equal_power(fed, fed_budget)
    solution = evaluate(problem, assignment, _equal_power(assignment, budget), cut, rank, fed, fed_power)
    return solution.with_run(policy=policy)


def equal_allocation(problem: Problem, cut: int, rank: int) -> Solution:
    """Equal contiguous subchannel blocks, equal power, the given cut and rank."""
    require_feasible(problem)
    k = problem.num_clients
    return _evaluate_equal_power(problem, contiguous_assignment(k, problem.num_subchannels),
                                 contiguous_assignment(k, problem.num_fed_subchannels), cut, rank, "equal")


def _random_assignment(rng: np.random.Generator, num_clients: int, width: int) -> np.ndarray:
    owner = rng.integers(num_clients, size=width)
    owner[rng.permutation(width)[:num_clients]] = rng.permutation(num_clients)
    return owner


def random_allocation(problem: Problem, cut: int, rank: int, rng: np.random.Generator) -> Solution:
    """Random subchannels (each client at least one), equal power, given cut and rank.

    Parameters
    ----------
    rng : numpy.random.Generator
        The caller's stream; the only source of randomness.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator (got {rng!r})")
    require_feasible(problem)
    k = problem.num_clients
    assignment = _random_assignment(rng, k, problem.num_subchannels)
    fed = _random_assignment(rng, k, problem.num_fed_subchannels) if problem.num_fed_subchannels else None
    return _evaluate_equal_power(problem, assignment, fed, cut, rank, "random")


def optimize_resources(problem: Problem, cut: int, rank: int) -> Solution:
    """Greedy subchannels and optimal power for the given cut and rank.

    The equal blocks with optimal power are tried too and the better kept, so
    this is never worse than :func:`equal_allocation` at the same cut and rank.
    """
    require_feasible(problem)
    ci, ri = problem.cut_index(cut), problem.rank_index(rank)
    terms = round_terms(problem)
    k = problem.num_clients
    budget, fed_budget = equal_budgets_w(problem)
    candidates = assignment_step(problem, terms, [(ci, ri)], budget, fed_budget)
    candidates.append((contiguous_assignment(k, problem.num_subchannels),
                       contiguous_assignment(k, problem.num_fed_subchannels)))
    best = None
    for assignment, fed in candidates:
        fed = fed if problem.num_fed_subchannels else None
        plan = optimal_power(problem, build_links(problem, assignment, fed), terms, ci, ri)
        solution = evaluate(problem, assignment, plan.power_w, cut, rank, fed,
                            plan.fed_power_w if fed is not None else None)
        if best is None or solution.total_delay_s < best.total_delay_s:
            best = solution
    return best.with_run(policy="resources_only")


def optimize_split_rank(problem: Problem) -> Solution:
    """Best cut and rank (exhaustive) with equal subchannels and equal power."""
    reference = equal_allocation(problem, int(problem.costs.cuts[0]), int(problem.costs.ranks[0]))
    ci, ri = best_split_rank_fixed_rates(problem, round_terms(problem), reference.uplink_rate_bps,
                                         reference.adapter_rate_bps)
    fed = reference.fed_assignment if problem.num_fed_subchannels else None
    fed_power = reference.fed_power_w if fed is not None else None
    solution = evaluate(problem, reference.assignment, reference.power_w, int(problem.costs.cuts[ci]),
                        int(problem.costs.ranks[ri]), fed, fed_power)
    return solution.with_run(policy="split_rank_only")
