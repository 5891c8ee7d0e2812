"""Power control for a fixed assignment, cut and rank: minimise the round delay.

The problem ``min_p max_k d_k`` s.t. per-device and total power limits is convex
(``1/R_k(p)`` is convex in p). It is solved by a search on the target delay T:
for a given T each client's required rate follows, and the least power reaching
a rate on its subchannels is inverse water-filling (:mod:`solver.waterfilling`),
so T is feasible iff every client's least power fits its limit and the sum fits
the total. Feasibility is monotone in T; the smallest feasible T is found with
a bracketing root finder (Brent's method, bisection-safeguarded) and then
nudged up until a witness allocation satisfies every limit exactly.

- Per-device limits only: every client can go at full power, so
  ``T* = max_k d_k(full power)`` in closed form; clients other than the slowest
  get the least power that finishes at ``T*`` (a tie-break that saves energy).
- ``M == 0``: the client sends ``I A + D`` bits at rate ``R_k``:
  ``R_k(T) = (I A + D) / (T - fixed_k)``.
- ``M > 0``: the client splits its time budget ``T - fixed_k`` between the
  activation uplink (main set) and the adapter upload (federated set); per
  client, the split minimising ``w X + w' Y`` (X, Y its power on each set) is
  convex in the split and found by bisection on the derivative
  ``-w L_X I A / t^2 + w' L_Y D / (tau - t)^2`` (``dP/dR = L ln 2``). With both
  totals the fed-power price ``nu`` (``w = 1, w' = nu``) is set so that the fed
  total binds, and T is feasible iff the main total then holds.

Each per-device limit applies to each set separately: the two uploads happen at
different times of the round.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from solver.links import Links
from solver.objective import RoundTerms, transfer_s
from solver.problem import Problem
from solver.waterfilling import water_filling


@dataclass(frozen=True, eq=False)
class PowerPlan:
    """Result of power control: the round delay reached and the powers (W)."""

    round_delay_s: float
    power_w: np.ndarray
    fed_power_w: np.ndarray


def full_power_round_delay_s(terms: RoundTerms, links: Links) -> np.ndarray:
    """(C, Rk) round delay with every client at its per-device limit.

    A lower bound of the optimal round delay on every cut x rank, exact when no
    total power limit is set.
    """
    uplink = transfer_s(terms.uplink_bits[:, None, None], links.max_rate_bps)
    adapter = transfer_s(terms.adapter_bits[:, :, None], links.fed_max_rate_bps)
    return np.max(terms.fixed_s + uplink + adapter, axis=-1)


def _rate(bits, time_s):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bits > 0, bits / time_s, 0.0)


def _smallest_feasible(excess, lo: float, scale: float, rtol: float = 1e-11) -> float:
    """Smallest x >= lo (to ~``rtol`` relative) with ``excess(x) <= 0``; excess decreasing."""
    if excess(lo) <= 0:
        return lo
    step = scale
    hi = lo + step
    while excess(hi) > 0:
        step *= 2.0
        hi = lo + step
        if step > 1e300:  # unreachable for positive limits; guards an infinite loop
            raise RuntimeError("power control: no feasible target found")
    x = brentq(excess, lo, hi, xtol=rtol * max(abs(hi), scale), rtol=1e-14)
    bump = rtol * max(abs(x), scale)
    while excess(x) > 0:
        x += bump
        bump *= 2.0
    return x


def _clip_rows(alloc: np.ndarray, power: np.ndarray, limit: np.ndarray, full: np.ndarray) -> np.ndarray:
    """Replace rows whose least power exceeds the limit by rounding with full-power rows."""
    over = power > limit
    alloc[over] = full[over]
    return alloc


def optimal_power(problem: Problem, links: Links, terms: RoundTerms, ci: int, ri: int) -> PowerPlan:
    """Least round delay for a fixed assignment at cut index ``ci``, rank index ``ri``.

    Returns a :class:`PowerPlan` whose powers meet every limit (up to float
    rounding of a client at exactly its limit); see the module docstring.
    """
    fixed = terms.fixed_s[ci, ri]
    if links.fed is None:
        return _shared_pool(problem, links, fixed, terms.uplink_bits[ci] + terms.adapter_bits[ci, ri])
    return _two_sets(problem, links, fixed, terms.uplink_bits[ci], terms.adapter_bits[ci, ri])


def _shared_pool(problem: Problem, links: Links, fixed: np.ndarray, bits: float) -> PowerPlan:
    k, m = problem.num_clients, problem.num_fed_subchannels
    limit = problem.max_power_w
    t_lb = float(np.max(fixed + transfer_s(bits, links.max_rate_bps)))
    power_at = lambda t: links.main.min_power(_rate(bits, t - fixed))  # noqa: E731
    t = t_lb
    if problem.total_power_w is not None and bits > 0:
        total = problem.total_power_w
        t = _smallest_feasible(lambda x: power_at(x)[0].sum() - total, t_lb, t_lb - np.max(fixed))
    power, level = power_at(t)
    full = links.main.allocation(links.main.max_rate(limit)[1])
    alloc = _clip_rows(links.main.allocation(level), power, limit, full)
    return PowerPlan(round_delay_s=t, power_w=alloc, fed_power_w=np.zeros((k, m)))


def _split(links: Links, u: float, v: float, tau, lo, hi, w_main: float, w_fed: float, start=None):
    """Per-client main-set time t in [lo, hi] minimising ``w_main X + w_fed Y``.

    The objective is convex in t; its derivative
    ``g(t) = -w L_X u / t^2 + w' L_Y v / (tau - t)^2`` is increasing, and its
    slope has a closed form on each active set (``dL/dR = L ln 2 / sum_active B``),
    so Newton's method safeguarded by the bracket [a, b] (bisection when a step
    leaves it) finds the root in a few iterations, fewer from a ``start`` near it
    (the previous solution, when the outer searches move T or the price a little).
    """
    if w_fed == 0:
        return hi
    if w_main == 0:
        return lo
    ln2 = np.log(2.0)

    def derivative(t):
        """g(t) and its slope g'(t) (both (K,))."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            rest = tau - t
            _, level_x, band_x = links.main.min_power(_rate(u, t), with_bandwidth=True)
            _, level_y, band_y = links.fed.min_power(_rate(v, rest), with_bandwidth=True)
            term_x = w_main * level_x * _rate(u, t * t)
            term_y = w_fed * level_y * _rate(v, rest * rest)
            # d/dt of (L u / t^2) = -(L u / t^2) (ln 2 u / (B t^2) + 2 / t), likewise for the fed term.
            slope = (term_x * (ln2 * _rate(u, t * t * np.where(band_x > 0, band_x, np.inf)) + 2.0 / t)
                     + term_y * (ln2 * _rate(v, rest * rest * np.where(band_y > 0, band_y, np.inf)) + 2.0 / rest))
        return term_y - term_x, slope

    # The minimum sits at an end of [lo, hi] when g does not change sign there.
    at_lo, at_hi = derivative(lo)[0] >= 0, derivative(hi)[0] <= 0
    a, b = lo.copy(), hi.copy()
    t = 0.5 * (a + b) if start is None else np.where((start > a) & (start < b), start, 0.5 * (a + b))
    done = at_lo | at_hi
    for _ in range(100):
        if np.all(done):
            break
        grad, slope = derivative(t)
        a, b = np.where(grad < 0, t, a), np.where(grad < 0, b, t)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = t - grad / slope
        inside = np.isfinite(newton) & (newton > a) & (newton < b)
        t_next = np.where(inside, newton, 0.5 * (a + b))
        done |= (np.abs(newton - t) <= 1e-12 * tau) | (b - a <= 1e-12 * tau) | (grad == 0)
        t = np.where(done, t, t_next)
    t = np.where(at_lo, lo, np.where(at_hi, hi, t))
    return np.clip(t, lo, hi)


def _two_sets(problem: Problem, links: Links, fixed: np.ndarray, u: float, v: float) -> PowerPlan:
    limit = problem.max_power_w
    main_total, fed_total = problem.total_power_w, problem.fed_total_power_w
    t_main_min = transfer_s(u, links.max_rate_bps)
    t_fed_min = transfer_s(v, links.fed_max_rate_bps)
    t_lb = float(np.max(fixed + t_main_min + t_fed_min))
    scale = t_lb - float(np.max(fixed)) if t_lb > np.max(fixed) else 1.0

    last_split = [None]

    def state(t, w_main, w_fed):
        tau = t - fixed
        t_main = _split(links, u, v, tau, t_main_min, tau - t_fed_min, w_main, w_fed, last_split[0])
        if w_main and w_fed:
            last_split[0] = t_main
        x, level_x = links.main.min_power(_rate(u, t_main))
        y, level_y = links.fed.min_power(_rate(v, tau - t_main))
        return x, y, level_x, level_y

    last_log_nu = [0.0]

    def priced_state(t):
        """Least main power with the fed total met: the fed price nu makes it bind."""
        cheap = state(t, 1.0, 0.0)  # least main power: fed at its per-device limit
        if cheap[1].sum() <= fed_total:
            return cheap
        fed_excess = lambda log_nu: state(t, 1.0, np.exp(log_nu))[1].sum() - fed_total  # noqa: E731
        # Bracket the price around the last one found (warm start across targets).
        step, lo, hi = 1.0, last_log_nu[0] - 1.0, last_log_nu[0] + 1.0
        while fed_excess(lo) <= 0:
            if lo < -700:
                return state(t, 1.0, np.exp(lo))
            lo, step = lo - step, 2 * step
        step = 1.0
        while fed_excess(hi) > 0:
            if hi > 700:
                return state(t, 0.0, 1.0)  # least fed power: the price nu = inf
            hi, step = hi + step, 2 * step
        log_nu = brentq(fed_excess, lo, hi, xtol=1e-9, rtol=1e-12)
        while fed_excess(log_nu) > 0 and log_nu < hi:
            log_nu = min(hi, log_nu + 1e-8)
        last_log_nu[0] = log_nu
        return state(t, 1.0, np.exp(log_nu))

    if main_total is None and fed_total is None:
        t, final = t_lb, (lambda x: state(x, 1.0, 1.0))
    elif fed_total is None:
        final = lambda x: state(x, 1.0, 0.0)  # noqa: E731
        t = _smallest_feasible(lambda x: final(x)[0].sum() - main_total, t_lb, scale)
    elif main_total is None:
        final = lambda x: state(x, 0.0, 1.0)  # noqa: E731
        t = _smallest_feasible(lambda x: final(x)[1].sum() - fed_total, t_lb, scale)
    else:
        t_fed = _smallest_feasible(lambda x: state(x, 0.0, 1.0)[1].sum() - fed_total, t_lb, scale)
        final = priced_state
        t = _smallest_feasible(lambda x: priced_state(x)[0].sum() - main_total, t_fed, scale)
    x, y, level_x, level_y = final(t)
    full_main = links.main.allocation(links.main.max_rate(limit)[1])
    full_fed = links.fed.allocation(links.fed.max_rate(limit)[1])
    return PowerPlan(round_delay_s=t,
                     power_w=_clip_rows(links.main.allocation(level_x), x, limit, full_main),
                     fed_power_w=_clip_rows(links.fed.allocation(level_y), y, limit, full_fed))


def full_power(problem: Problem, assignment: np.ndarray) -> np.ndarray:
    """(K, N) W: each client's whole per-device budget water-filled over its own subchannels.

    Without a total power limit no power plan on ``assignment`` gives any client a
    shorter delay: each client's rate is the most its budget buys, so the round
    delay is the optimum's (set by the slowest client at full power) and every
    other client finishes early. :func:`optimal_power` instead gives the others the
    least power that finishes them exactly at the round delay, which saves
    energy but leaves no margin: under fading that the decision did not foresee,
    any of them can become the straggler. With a total limit the budgets are
    coupled and this plan may exceed it; use :func:`optimal_power` there.
    """
    assignment = np.asarray(assignment)
    power = np.zeros(problem.gain_lin.shape)
    for k in range(problem.num_clients):
        subs = np.flatnonzero(assignment == k)
        if subs.size:
            power[k, subs] = water_filling(problem.max_power_w[k], problem.snr_per_w[k, subs],
                                           problem.bandwidth_hz[subs])
    return power
