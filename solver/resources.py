"""The assignment step: greedy assignments at a few grid points, the best polished.

For each grid point (cut, rank) given and each seed rule, the greedy fill of
:mod:`solver.assignment` runs without local search; its objective
``rounds(r) max_k d_k`` ranks the results (under the power budgets, exact
without a total limit; with one, power flows between clients, so by optimal
power control). Those within ``polish_margin`` of the best get the local search
(the costly part), and, with a total limit, the exact-power refinement of
:mod:`solver.refine`.
"""

from __future__ import annotations

import numpy as np

from solver.assignment import SEEDS, greedy_assignment, local_search
from solver.links import build_links
from solver.objective import RoundTerms
from solver.power import optimal_power
from solver.problem import Problem
from solver.refine import refine_with_power


def assignment_step(problem: Problem, terms: RoundTerms, points, budget_w, fed_budget_w=None, *,
                    polish_margin: float = 0.0, min_polished: int | None = None, cache: dict | None = None
                    ) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Candidate assignments for the grid points ``points``.

    Parameters
    ----------
    points : list of (int, int)
        ``(cut index, rank index)`` at which to run the greedy.
    budget_w, fed_budget_w : (K,) float, W
        Per-client power budgets of the greedy's delay model.
    polish_margin : float
        Fills whose objective is within this fraction of the best are polished.
    min_polished : int, optional
        At least this many distinct fills are polished, the best first (default
        1, or 3 with a total limit, where a fill's rank says less).
    cache : dict, optional
        Shared with :func:`solver.refine.refine_with_power` across calls.

    Returns
    -------
    list of (assignment (N,), fed_assignment (M,) or None)
        Distinct polished assignments, to be scored with optimal power.
    """
    fed_set = problem.num_fed_subchannels > 0
    total_set = problem.total_power_w is not None or problem.fed_total_power_w is not None
    cache = {} if cache is None else cache
    fills = []
    for ci, ri in points:
        for seed in SEEDS:
            assignment, fed, delay = greedy_assignment(problem, terms, ci, ri, budget_w, fed_budget_w,
                                                       seed=seed, max_moves=0,
                                                       memo=cache.setdefault("fill_rates", {}))
            if total_set:  # power flows between clients: rank by the exact optimal-power delay
                key = (ci, ri, assignment.tobytes()) + ((fed.tobytes(),) if fed_set else ())
                if key not in cache:
                    links = build_links(problem, assignment, fed if fed_set else None)
                    cache[key] = optimal_power(problem, links, terms, ci, ri)
                delay = cache[key].round_delay_s
            fills.append((problem.rounds_to_target[ri] * delay, ci, ri, assignment, fed))
    if min_polished is None:
        min_polished = 3 if total_set else 2
    fills.sort(key=lambda fill: fill[0])  # stable: ties keep the order of points and seeds
    best = fills[0][0]
    seen, result, polished = set(), [], set()
    for value, ci, ri, assignment, fed in fills:
        start = (ci, ri, assignment.tobytes(), fed.tobytes())
        if start in polished or (value > best * (1 + polish_margin) and len(polished) >= min_polished):
            continue
        polished.add(start)
        assignment, fed, _ = local_search(problem, terms, ci, ri, assignment, fed, budget_w, fed_budget_w)
        fed = fed if fed_set else None
        if total_set:
            assignment, fed = refine_with_power(problem, terms, ci, ri, assignment, fed, cache=cache)
        key = (assignment.tobytes(), None if fed is None else fed.tobytes())
        if key not in seen:
            seen.add(key)
            result.append((assignment, fed))
    return result
