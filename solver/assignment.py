"""Greedy subchannel assignment for a fixed cut, rank and power budget per client.

The objective is the slowest client's delay, so only giving a subchannel to the
slowest client (the bottleneck) can lower it. The rule, in three phases:

1. **Seed.** Every client needs one subchannel of each set in use. Two rules:
   ``"worst_first"``, the client whose delay would be largest on its best free
   subchannel picks first (the worst-off client must not be left with the
   scraps); ``"matching"``, the one-per-client matching that minimises the
   largest delay (bottleneck assignment, exact, by bisection over thresholds
   with ``scipy.optimize.linear_sum_assignment``).
2. **Fill.** While subchannels are free, the current bottleneck takes the free
   subchannel (of either set) that lowers its delay most, evaluated exactly with
   water-filling of its power budget over its subchannels plus the candidate.
3. **Exchange.** Local search (:mod:`solver.local_search`): re-partition the
   subchannels of the bottleneck and one other client (every split of their
   union when small, else moves and swaps) while that lowers the largest delay,
   with two-step chains and soft steps to get past plateaus.

Why this rule: the bottleneck is the only client whose rate matters to the
objective, so every subchannel goes where it shortens the round most; seeding
first guarantees the one-subchannel-each constraint without letting an early
greedy pick starve a weak client; the exchanges undo the fill's myopic choices.

Delays here use the per-client budgets given (the "power policy": the
per-device limits, or the current powers when a total limit binds); power
control then re-optimises the powers for the assignment found. Without a total
limit these delays are exact: the optimal power of the slowest client is its
limit.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from solver.channel_sets import ChannelSet
from solver.local_search import DelayModel, search
from solver.objective import RoundTerms, transfer_s
from solver.problem import Problem


def _single_rate(s: ChannelSet, budget_w: np.ndarray) -> np.ndarray:
    """(K, W) rate of each client alone on each subchannel at its budget."""
    return s.bandwidth * np.log2(1 + budget_w[:, None] * s.snr)


def _seed_worst_first(s: ChannelSet, budget_w: np.ndarray, delay_of_rate) -> None:
    """Seed: the client worst off on its best free subchannel picks first."""
    k = s.num_clients
    single = _single_rate(s, budget_w)
    waiting = np.ones(k, dtype=bool)
    for _ in range(k):
        masked = np.where(s.owner[None, :] < 0, single, -np.inf)
        best = np.argmax(masked, axis=1)
        delay = np.where(waiting, delay_of_rate(masked[np.arange(k), best]), -np.inf)
        client = int(np.argmax(delay))
        s.owner[best[client]] = client
        waiting[client] = False


def _seed_matching(s: ChannelSet, budget_w: np.ndarray, delay_of_rate) -> None:
    """Seed: one subchannel each, minimising the largest delay (bottleneck matching).

    Bisection on the threshold over the sorted single-subchannel delays; a
    threshold is reachable iff the edges under it hold a perfect matching of the
    clients. Among those matchings the one of least total delay is taken.
    """
    delay = delay_of_rate(_single_rate(s, budget_w).T).T  # (K, W)
    delay = np.minimum(delay, np.finfo(float).max)  # a subchannel useless to a client: huge, not inf
    levels = np.unique(delay)
    lo, hi = 0, levels.size - 1
    while lo < hi:
        mid = (lo + hi) // 2
        rows, cols = linear_sum_assignment(delay > levels[mid])
        if np.any((delay > levels[mid])[rows, cols]):
            lo = mid + 1
        else:
            hi = mid
    within = delay <= levels[lo]
    rows, cols = linear_sum_assignment(np.where(within, delay / max(levels[lo], 1e-300), 2.0 * delay.shape[0]))
    s.owner[cols] = rows


SEEDS = {"worst_first": _seed_worst_first, "matching": _seed_matching}


def _model(problem: Problem, terms: RoundTerms, ci: int, ri: int, budget_w, fed_budget_w,
           owners=(None, None), seed: str | None = None) -> DelayModel:
    """The budget model at ``ci, ri``, from given owners or seeded from scratch."""
    fixed = terms.fixed_s[ci, ri]
    shared = problem.num_fed_subchannels == 0
    u = terms.uplink_bits[ci] + (terms.adapter_bits[ci, ri] if shared else 0.0)
    v = 0.0 if shared else terms.adapter_bits[ci, ri]
    budgets = [np.asarray(budget_w, dtype=float)]
    sets = [ChannelSet(problem.snr_per_w, problem.bandwidth_hz, owners[0])]
    if seed is not None:
        SEEDS[seed](sets[0], budgets[0], lambda rate: fixed + transfer_s(u, rate))
    if not shared:
        budgets.append(np.asarray(fed_budget_w, dtype=float))
        sets.append(ChannelSet(problem.fed_snr_per_w, problem.fed_bandwidth_hz, owners[1]))
        if seed is not None:
            main_rate = sets[0].current().max_rate(budgets[0])[0]
            SEEDS[seed](sets[1], budgets[1], lambda rate: fixed + transfer_s(u, main_rate) + transfer_s(v, rate))
    return DelayModel(fixed, u, v, sets, budgets)


def _owners(model: DelayModel):
    fed = model.sets[1].owner.copy() if len(model.sets) > 1 else np.zeros(0, dtype=np.int64)
    return model.sets[0].owner.copy(), fed


def greedy_assignment(problem: Problem, terms: RoundTerms, ci: int, ri: int, budget_w: np.ndarray,
                      fed_budget_w: np.ndarray | None = None, *, seed: str = "worst_first",
                      max_moves: int | None = None, memo: dict | None = None):
    """Assign subchannels by the bottleneck rule (module docstring).

    Parameters
    ----------
    terms : RoundTerms
        Delay model coefficients; ``ci``, ``ri`` index the cut and rank.
    budget_w, fed_budget_w : (K,) float, W
        Power each client spreads (water-filling) over its main / federated subchannels.
    seed : {"worst_first", "matching"}
        How each client gets its first subchannel (module docstring).
    max_moves : int, optional
        Cap on local-search exchanges (default ``2 (N + M)``; 0 skips phase 3).
    memo : dict, optional
        The fill's rates already computed, shared by calls on the same problem: greedy
        runs at other grid points and seeds ask mostly the same questions (which client
        holds what, plus which subchannel, at which budget), and the answers do not
        depend on the grid point. The same numbers, computed once.

    Returns
    -------
    assignment : (N,) int
        Every subchannel assigned, every client holding at least one.
    fed_assignment : (M,) int
    round_delay_s : float, s
        The largest client delay under the budgets.
    """
    model = _model(problem, terms, ci, ri, budget_w, fed_budget_w, seed=seed)
    _fill(model, {} if memo is None else memo)
    limit = 2 * (problem.num_subchannels + problem.num_fed_subchannels) if max_moves is None else max_moves
    search(model, limit)
    return _owners(model) + (float(np.max(model.delays())),)


def local_search(problem: Problem, terms: RoundTerms, ci: int, ri: int, assignment, fed_assignment,
                 budget_w: np.ndarray, fed_budget_w: np.ndarray | None = None, *, max_moves: int | None = None):
    """Phase 3 alone, from a complete assignment; same parameters and returns as
    :func:`greedy_assignment`."""
    model = _model(problem, terms, ci, ri, budget_w, fed_budget_w, owners=(assignment, fed_assignment))
    limit = 2 * (problem.num_subchannels + problem.num_fed_subchannels) if max_moves is None else max_moves
    search(model, limit)
    return _owners(model) + (float(np.max(model.delays())),)


def _fill(model: DelayModel, memo: dict) -> None:
    """Phase 2: the bottleneck takes the free subchannel that helps it most (rates memoised in ``memo``)."""
    sets = model.sets
    while any(np.any(s.owner < 0) for s in sets):
        current = model.delays()
        k = int(np.argmax(current))
        best = (current[k], None, None, None)
        for which, s in enumerate(sets):
            free = np.flatnonzero(s.owner < 0)
            if free.size > 1 and np.all(s.bandwidth[free] == s.bandwidth[free[0]]):
                # With equal bandwidths the water-filling rate grows with the added
                # subchannel's SNR: only the strongest free one can help most.
                free = free[[int(np.argmax(s.snr[k, free]))]]
            if free.size:
                budget = float(model.budgets[which][k])
                key = (which, k, s.channels(k).tobytes(), free.tobytes(), budget)
                rate = memo.get(key)
                if rate is None:
                    rate = memo[key] = s.rate_plus(k, free, budget)
                delay = model.delays(which, rate, np.full(free.size, k))
                i = int(np.argmin(delay))
                if delay[i] < best[0]:
                    best = (delay[i], which, free[i], rate[i])
        if best[1] is None:  # nothing helps the bottleneck: the rest go by SNR
            for which, s in enumerate(sets):
                free = np.flatnonzero(s.owner < 0)
                s.owner[free] = np.argmax(s.snr[:, free], axis=0)
                model.rates[which] = s.current().max_rate(model.budgets[which])[0]
            return
        _, which, channel, rate = best
        sets[which].owner[channel] = k
        model.rates[which][k] = rate
