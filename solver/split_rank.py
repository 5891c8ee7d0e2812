"""Exhaustive search of the cut x rank grid, vectorised over the profiled table.

The grid is small (tens of cuts x a handful of ranks) and the delay model is
affine in the per-client constants, so the objective ``rounds(r) max_k d_k(c, r)``
is evaluated on the whole grid at once. Ties go to the smallest cut, then the
smallest rank (``np.argmin`` order).
"""

from __future__ import annotations

import numpy as np

from solver.links import Links
from solver.objective import RoundTerms, grid_delays_s
from solver.power import PowerPlan, full_power_round_delay_s, optimal_power
from solver.problem import Problem


def grid_objective_s(problem: Problem, terms: RoundTerms, uplink_rate_bps, adapter_rate_bps) -> np.ndarray:
    """(C, Rk) total training delay ``rounds(r) max_k d_k`` for fixed rates (K,), s."""
    return problem.rounds_to_target[None, :] * np.max(grid_delays_s(terms, uplink_rate_bps, adapter_rate_bps),
                                                      axis=-1)


def best_split_rank_fixed_rates(problem: Problem, terms: RoundTerms, uplink_rate_bps,
                                adapter_rate_bps) -> tuple[int, int]:
    """``(cut index, rank index)`` minimising the objective for fixed rates."""
    objective = grid_objective_s(problem, terms, uplink_rate_bps, adapter_rate_bps)
    ci, ri = np.unravel_index(int(np.argmin(objective)), objective.shape)
    return int(ci), int(ri)


def best_split_rank_with_power(problem: Problem, links: Links, terms: RoundTerms,
                               bound: float = np.inf) -> tuple[int, int, PowerPlan] | None:
    """Best cut and rank for a fixed assignment, each with its optimal power.

    Every grid point's full-power delay is a lower bound of its optimum (exact
    without a total power limit); points are solved in increasing order of that
    bound until the bound exceeds the best objective found (branch and bound).

    Parameters
    ----------
    bound : float, s
        Only return a result with objective below this (for brute force).

    Returns
    -------
    (ci, ri, plan) or None
        None when no grid point beats ``bound``.
    """
    rounds = problem.rounds_to_target[None, :]
    lower = rounds * full_power_round_delay_s(terms, links)
    no_total = problem.total_power_w is None and problem.fed_total_power_w is None
    best, best_value = None, bound
    for flat in np.argsort(lower, axis=None, kind="stable"):
        ci, ri = np.unravel_index(int(flat), lower.shape)
        if lower[ci, ri] >= best_value:
            break
        plan = optimal_power(problem, links, terms, int(ci), int(ri))
        value = problem.rounds_to_target[ri] * plan.round_delay_s
        if value < best_value:
            best, best_value = (int(ci), int(ri), plan), value
        if no_total:
            break
    return best
