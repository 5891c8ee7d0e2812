"""Exact optimum of small instances by enumeration, to check the optimizer against.

Every assignment of the N (and M) subchannels in which each client holds at
least one, every cut and rank, each with optimal power (:mod:`solver.power`,
exact). Without a total power limit the optimal power is full power for the
slowest client, so the whole enumeration is one vectorised evaluation; with a
total limit, combinations are solved in increasing order of their full-power
lower bound until the bound exceeds the best found (branch and bound).
"""

from __future__ import annotations

import numpy as np

from solver.enumerate import every_assignment
from solver.links import build_links, held_snr
from solver.objective import evaluate, round_terms, transfer_s
from solver.problem import Problem, require_feasible
from solver.solution import Solution
from solver.split_rank import best_split_rank_with_power
from solver.waterfilling import WaterFilling


def _full_power_rates(snr: np.ndarray, bandwidth: np.ndarray, assignments: np.ndarray,
                      limit_w: np.ndarray) -> np.ndarray:
    """(A, K) water-filling rate of each client at its limit, for every assignment."""
    held = np.stack([held_snr(snr, a) for a in assignments])
    return WaterFilling(held, bandwidth).max_rate(limit_w[None, :])[0]


def brute_force(problem: Problem, *, max_combinations: int = 200_000) -> Solution:
    """The optimal decision of a small instance, by exhaustive search.

    Parameters
    ----------
    problem : Problem
        Small: ``K^N K^M`` assignments are enumerated (K = 3, N = 6 is 729).
    max_combinations : int
        Refuse larger enumerations.

    Returns
    -------
    Solution
        ``policy="brute_force"``.

    Raises
    ------
    InfeasibleError
        When a client cannot get a subchannel.
    ValueError
        When ``K^N K^M`` exceeds ``max_combinations``.
    """
    if problem.energy_budget_j is not None:  # exact under a per-device energy budget
        from solver.energy import brute_force_energy

        return brute_force_energy(problem, max_combinations=max_combinations)
    require_feasible(problem)
    k, n, m = problem.num_clients, problem.num_subchannels, problem.num_fed_subchannels
    size = k ** n * k ** m
    if size > max_combinations:
        raise ValueError(f"problem: brute_force enumerates K^N K^M = {size} assignments, "
                         f"more than max_combinations={max_combinations}")
    terms = round_terms(problem)
    main = every_assignment(k, n)
    fed = every_assignment(k, m)
    rate = _full_power_rates(problem.snr_per_w, problem.bandwidth_hz, main, problem.max_power_w)
    if m:
        fed_rate = _full_power_rates(problem.fed_snr_per_w, problem.fed_bandwidth_hz, fed, problem.max_power_w)
        adapter_rate = fed_rate[None, :, :]  # (1, A2, K)
    else:
        adapter_rate = rate[:, None, :]  # (A, 1, K)
    # (A, A2, C, Rk) full-power objective: exact without totals, a lower bound with them.
    uplink = transfer_s(terms.uplink_bits[:, None, None], rate[:, None, None, None, :])
    adapter = transfer_s(terms.adapter_bits[:, :, None], adapter_rate[:, :, None, None, :])
    lower = problem.rounds_to_target * np.max(terms.fixed_s + uplink + adapter, axis=-1)
    per_combo = lower.reshape(lower.shape[0], lower.shape[1], -1).min(axis=-1)
    no_total = problem.total_power_w is None and problem.fed_total_power_w is None
    best, best_value = None, np.inf
    for flat in np.argsort(per_combo, axis=None, kind="stable"):
        a, b = np.unravel_index(int(flat), per_combo.shape)
        if per_combo[a, b] >= best_value:
            break
        links = build_links(problem, main[a], fed[b] if m else None)
        found = best_split_rank_with_power(problem, links, terms, bound=best_value)
        if found is not None:
            ci, ri, plan = found
            best, best_value = (a, b, ci, ri, plan), problem.rounds_to_target[ri] * plan.round_delay_s
        if no_total:
            break
    a, b, ci, ri, plan = best
    solution = evaluate(problem, main[a], plan.power_w, int(problem.costs.cuts[ci]), int(problem.costs.ranks[ri]),
                        fed[b] if m else None, plan.fed_power_w if m else None)
    return solution.with_run(policy="brute_force")
