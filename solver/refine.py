"""Local search on the exact power-controlled delay, for total power limits.

With a total power limit, power flows between clients, so the greedy's fixed
per-client budgets misjudge an assignment. Here the current plan (optimal power
at round delay T) fixes each client's rate on each set, and an exchange of
subchannels between two clients (:mod:`solver.channel_sets`) is judged by the
least power the two then need for those same rates (inverse water-filling,
margin-adaptive allocation). On each set the *merit*

    max( max_k P_k / P_k^max,  sum_k P_k / P_total )

is at most 1 at a feasible T; an exchange that brings it below 1 leaves slack in
every binding constraint, so T can be lowered. The exchanges that lower it most
are confirmed by power control (:func:`solver.power.optimal_power`) and the
first that shortens the round is kept; the search stops when none does.

The receivers tried are the clients with the highest water level on the set
(the dearest marginal power, ``dP/dR = L ln 2``) and any client at its
per-device limit, which keeps each step linear in N.
"""

from __future__ import annotations

import numpy as np

from solver.local_search import others_max
from solver.channel_sets import ChannelSet
from solver.links import build_links
from solver.objective import RoundTerms
from solver.power import optimal_power
from solver.problem import Problem


def _screen(problem: Problem, sets, plan, receivers: int, verify: int):
    """The ``verify`` exchanges of each set that lower its merit most, as ``(which, exchanges, q)``."""
    limit = problem.max_power_w
    powers = [plan.power_w, plan.fed_power_w][:len(sets)]
    totals = [problem.total_power_w, problem.fed_total_power_w]
    picks = []
    for which, s in enumerate(sets):
        used = powers[which].sum(axis=1)
        current = s.current()
        rate = np.sum(s.bandwidth * np.log2(1 + powers[which] * s.snr), axis=1)
        level = current.min_power(rate)[1]
        total = np.inf if totals[which] is None else totals[which]
        ratio = used / limit
        chosen = np.union1d(np.argsort(-level, kind="stable")[:receivers], np.flatnonzero(ratio >= ratio.max() - 1e-9))
        ex = s.exchanges(chosen)
        if ex.size == 0:
            continue
        need_recv = s.grouped(ex.receiver, ex.receiver_rows, "min_power", rate[ex.receiver])
        need_give = s.grouped(ex.giver, ex.giver_rows, "min_power", rate[ex.giver])
        new_total = used.sum() - used[ex.receiver] - used[ex.giver] + need_recv + need_give
        merit = np.maximum.reduce([others_max(ratio, ex.receiver, ex.giver), need_recv / limit[ex.receiver],
                                   need_give / limit[ex.giver], new_total / total])
        old = max(ratio.max(), used.sum() / total)
        for q in np.argsort(merit, kind="stable")[:verify]:
            if merit[q] < old * (1 - 1e-12):
                picks.append((which, ex, int(q)))
    return picks


def refine_with_power(problem: Problem, terms: RoundTerms, ci: int, ri: int, assignment, fed_assignment=None,
                      *, max_steps: int | None = None, receivers: int = 3, verify: int = 3,
                      cache: dict | None = None):
    """Improve an assignment by exchanges confirmed by exact power control.

    Parameters
    ----------
    assignment, fed_assignment : (N,), (M,) int
        Starting point (every client holding a subchannel of each set in use).
    max_steps : int, optional
        Cap on accepted exchanges (default ``N + M``).
    receivers : int
        Clients of highest water level whose exchanges are screened, per set.
    verify : int
        Exchanges per set confirmed by power control at each step.
    cache : dict, optional
        Power plans already computed for this problem, keyed by cut and rank
        index and assignment; shared by the caller across calls.

    Returns
    -------
    assignment : (N,) int
    fed_assignment : (M,) int or None
    """
    sets = [ChannelSet(problem.snr_per_w, problem.bandwidth_hz, assignment)]
    if problem.num_fed_subchannels:
        sets.append(ChannelSet(problem.fed_snr_per_w, problem.fed_bandwidth_hz, fed_assignment))

    cache = {} if cache is None else cache

    def solve_power(owners):
        key = (ci, ri) + tuple(owner.tobytes() for owner in owners)
        if key not in cache:
            links = build_links(problem, owners[0], owners[1] if len(owners) > 1 else None)
            cache[key] = optimal_power(problem, links, terms, ci, ri)
        return cache[key]

    plan = solve_power([s.owner for s in sets])
    steps = problem.num_subchannels + problem.num_fed_subchannels if max_steps is None else max_steps
    for _ in range(steps):
        best = (plan.round_delay_s * (1 - 1e-12), None, None)
        for which, ex, q in _screen(problem, sets, plan, receivers, verify):
            trial = ChannelSet(sets[which].snr, sets[which].bandwidth, sets[which].owner)
            trial.apply(ex, q)
            owners = [trial.owner if w == which else s.owner.copy() for w, s in enumerate(sets)]
            candidate = solve_power(owners)
            if candidate.round_delay_s < best[0]:
                best = (candidate.round_delay_s, owners, candidate)
        if best[1] is None:
            break
        for s, owner in zip(sets, best[1]):
            s.owner = owner.copy()
        plan = best[2]
    return sets[0].owner.copy(), (sets[1].owner.copy() if len(sets) > 1 else None)
