"""The joint optimizer: alternating optimisation of resources, cut and rank.

Minimise ``rounds(r) max_k d_k`` (:mod:`solver.objective`) over the subchannel
assignment, the transmit powers, the cut and the rank (FedsLLM, arXiv
2504.14667). Each iteration:

1. **Assignment** for the current cut and rank, and for the next ``starts - 1``
   best grid points of the current assignment (the greedy rule depends on the
   cut and rank through each client's compute time and bits; a few starts keep
   the search from settling on the first one): :mod:`solver.resources`, the
   greedy of :mod:`solver.assignment` with each client's power budget from the
   power policy (its per-device limit, or its current power when a total limit
   binds), its local search, and with a total limit :mod:`solver.refine`.
2. **Power and 3. cut x rank** for each assignment found: every grid point gets
   its optimal power (:mod:`solver.power`, convex, exact) and the best point
   wins (:mod:`solver.split_rank`); at least as good as alternating the two.

It starts from the ``split_rank_only`` baseline (equal resources, best cut and
rank), whose assignment is also re-powered, and stops when an iteration improves
the objective by less than ``tol`` (relative). The best decision seen is kept,
so the history is non-increasing and the result is never worse than the start,
hence never worse than :func:`solver.baselines.equal_allocation` at any cut and
rank, nor than ``split_rank_only``.
"""

from __future__ import annotations

import numpy as np

from solver.baselines import equal_budgets_w, optimize_split_rank
from solver.links import build_links
from solver.objective import evaluate, round_terms
from solver.power import full_power_round_delay_s
from solver.problem import Problem, require_feasible
from solver.resources import assignment_step
from solver.solution import Solution
from solver.split_rank import best_split_rank_with_power


def _start_points(problem: Problem, terms, links, ci: int, ri: int, starts: int) -> list[tuple[int, int]]:
    """The current grid point, then the next best ones for the current assignment."""
    lower = problem.rounds_to_target[None, :] * full_power_round_delay_s(terms, links)
    points = [(ci, ri)]
    for flat in np.argsort(lower, axis=None, kind="stable"):
        if len(points) >= starts:
            break
        point = tuple(int(i) for i in np.unravel_index(int(flat), lower.shape))
        if point not in points:
            points.append(point)
    return points


def _better(candidate: Solution, best: Solution) -> bool:
    """Shorter, or as short on less transmit power (e.g. nothing to send)."""
    if candidate.total_delay_s != best.total_delay_s:
        return candidate.total_delay_s < best.total_delay_s
    power = lambda s: s.power_w.sum() + s.fed_power_w.sum()  # noqa: E731
    return power(candidate) < power(best)


def solve(problem: Problem, *, tol: float = 1e-6, max_iter: int = 50, starts: int = 5) -> Solution:
    """Jointly choose subchannels, power, cut and rank to minimise the training delay.

    Parameters
    ----------
    problem : Problem
    tol : float
        Stop when an iteration lowers the objective by less than ``tol`` times
        its value.
    max_iter : int
        Most iterations (each: assignment, then cut x rank with optimal power).
    starts : int
        Grid points at which the assignment step runs each iteration: the
        current cut and rank, and the next best for the current assignment
        (the greedy rule depends on the cut and rank; a few starts avoid
        settling on the first one's assignment).

    Returns
    -------
    Solution
        ``policy="optimizer"``, with ``iterations`` and the non-increasing
        ``objective_history_s`` (start, then the best after each iteration).

    Raises
    ------
    InfeasibleError
        When a client cannot get a subchannel (``K > N``, or ``0 < M < K``), or
        (with ``energy_budget_j``) no decision meets every device's budget.
    ValueError
        For a bad ``tol``, ``max_iter`` or ``starts``.

    With ``problem.energy_budget_j`` set, the search is :func:`solver.energy.solve_energy`.
    """
    if problem.energy_budget_j is not None:  # least delay under a per-device energy budget
        from solver.energy import solve_energy

        return solve_energy(problem, starts=starts)
    if not (isinstance(tol, (int, float)) and np.isfinite(tol) and 0 <= tol < 1):
        raise ValueError(f"tol: expected a number in [0, 1) (got {tol!r})")
    for name, value in (("max_iter", max_iter), ("starts", starts)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: expected an integer >= 1 (got {value!r})")
    require_feasible(problem)
    terms = round_terms(problem)
    fed_set = problem.num_fed_subchannels > 0
    best = optimize_split_rank(problem)
    best_links = build_links(problem, best.assignment, best.fed_assignment if fed_set else None)
    history = [best.total_delay_s]
    budget, fed_budget = equal_budgets_w(problem)
    # The start's assignment is a candidate too: its power is not optimised yet.
    candidates = [(best.assignment, best.fed_assignment if fed_set else None)]
    tried: set = set()
    power_cache: dict = {}
    iterations = 0
    for _ in range(max_iter):
        iterations += 1
        previous = best.total_delay_s
        ci, ri = problem.cut_index(best.cut), problem.rank_index(best.rank)
        # A grid point already tried with the same budgets gives the same greedy result.
        budget_key = (budget.tobytes(), None if fed_budget is None else fed_budget.tobytes())
        points = [point for point in _start_points(problem, terms, best_links, ci, ri, starts)
                  if (point, budget_key) not in tried]
        tried.update((point, budget_key) for point in points)
        if points:
            candidates += assignment_step(problem, terms, points, budget, fed_budget, cache=power_cache)
        for assignment, fed_assignment in candidates:
            links = build_links(problem, assignment, fed_assignment)
            cj, rj, plan = best_split_rank_with_power(problem, links, terms)
            candidate = evaluate(problem, assignment, plan.power_w, int(problem.costs.cuts[cj]),
                                 int(problem.costs.ranks[rj]), fed_assignment,
                                 plan.fed_power_w if fed_set else None)
            if _better(candidate, best):
                best, best_links, best_plan = candidate, links, plan
        candidates = []
        history.append(best.total_delay_s)
        if not best.total_delay_s < previous * (1 - tol):
            break
        if problem.total_power_w is not None:
            budget = best_plan.power_w.sum(axis=1)
        if problem.fed_total_power_w is not None:
            fed_budget = best_plan.fed_power_w.sum(axis=1)
    return best.with_run(policy="optimizer", iterations=iterations, objective_history_s=tuple(history))
