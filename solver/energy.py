"""Least training delay under a per-device energy budget per round.

With ``M == 0`` and no total power limit, device k sends ``u = I A_c + D_{c,r}`` bits
per round at ``R_k(P)`` (water-filling of its power P over its subchannels), and
spends

.. math:: E_k(P) = E^\\mathrm{cmp}_{k,c,r} + (P + P_c)\\, u / R_k(P) \\le B_k .

Its delay falls as P grows, so the best power for a fixed assignment, cut and
rank is the largest feasible one, each device on its own (the round delay is the
maximum of independent terms). ``(P + P_c) / R(P)``, the energy per bit, is
increasing in P when ``P_c = 0`` (R is concave with R(0) = 0) and quasi-convex
otherwise (it falls, then rises: the energy-efficient power); so the feasible
powers form an interval and its top is found by a golden-section search for the
minimum followed by bisection on the rising branch. A device that cannot meet
its budget at any power makes that choice infeasible (infinite delay).

:func:`brute_force_energy` enumerates every assignment with this exact inner
step. :func:`solve_energy` alternates the greedy assignment of
:mod:`solver.resources` (with each device's budget set to its energy-capped
power of the best decision so far) and the exact inner step on the whole
cut x rank grid, until the objective stops improving.
"""

from __future__ import annotations

import numpy as np

from cosim.errors import InfeasibleError
from solver.baselines import contiguous_assignment
from solver.enumerate import every_assignment
from solver.links import held_snr
from solver.objective import evaluate, round_terms
from solver.problem import Problem, require_feasible
from solver.resources import assignment_step
from solver.solution import Solution
from solver.waterfilling import WaterFilling

_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


def check_energy_problem(problem: Problem) -> None:
    """The energy budget is supported with the adapters on the main set and without a total power limit."""
    if problem.num_fed_subchannels or problem.total_power_w is not None:
        raise ValueError("energy_budget_j: supported with M == 0 (no federated set) and no total_power_w "
                         f"(got M={problem.num_fed_subchannels}, total_power_w={problem.total_power_w!r})")


def capped_power_w(snr_per_w: np.ndarray, bandwidth_hz: np.ndarray, bits: np.ndarray, allowance_j: np.ndarray,
                   max_power_w: np.ndarray, circuit_power_w: np.ndarray,
                   iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Largest ``P <= max_power_w`` with ``(P + P_c) bits / R(P) <= allowance_j`` (NaN where none), and the
    least transmit energy any power reaches (J), for each row of ``wf`` and each of G budgets.

    Parameters
    ----------
    snr_per_w : (U, N) array_like
        One device's subchannels per row (0 where not held), 1/W.
    bandwidth_hz : (N,) array_like
    bits, allowance_j : (U, G) array_like
        Bits to send and energy left for sending them, per row and budget.
    max_power_w, circuit_power_w : (U,) array_like
    """
    snr = np.asarray(snr_per_w, dtype=float)
    wf = WaterFilling(snr, bandwidth_hz)
    u = snr.shape[0]
    bits = np.asarray(bits, dtype=float)
    allowance = np.asarray(allowance_j, dtype=float)
    p_max = np.broadcast_to(np.asarray(max_power_w, dtype=float), (u,))
    p_c = np.broadcast_to(np.asarray(circuit_power_w, dtype=float), (u,))

    def per_bit(p, rows=None):
        """Energy per bit (P + P_c) / R(P) of each row at power p (U,) or (U, G)."""
        w = wf if rows is None else rows
        rate, _ = w.max_rate(p)
        pc = p_c if p.ndim == 1 else p_c[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(rate > 0, (p + pc) / rate, np.inf)

    # Golden section for the energy-efficient power on [0, P_max] (the energy per bit is quasi-convex);
    # it does not depend on the budget, so it runs once per row.
    lo, hi = np.zeros(u), p_max.copy()
    x1, x2 = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
    f1, f2 = per_bit(x1), per_bit(x2)
    for _ in range(iterations):
        left = f1 <= f2
        hi = np.where(left, x2, hi)
        lo = np.where(left, lo, x1)
        x2n = np.where(left, x1, lo + _GOLDEN * (hi - lo))
        x1n = np.where(left, hi - _GOLDEN * (hi - lo), x2)
        f2 = np.where(left, f1, per_bit(x2n))
        f1 = np.where(left, per_bit(x1n), f2)
        x1, x2 = x1n, x2n
    p_best = 0.5 * (lo + hi)
    least_per_bit = per_bit(p_best)[:, None]
    least_j = np.where(bits > 0, least_per_bit * bits, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = np.where(bits > 0, allowance / bits, np.inf)  # J per bit allowed
    feasible = (least_j <= allowance) & (allowance >= 0) & wf.has_channel[:, None]
    at_max = per_bit(p_max)[:, None] <= theta
    # Bisection on the rising branch [P*, P_max] for the top of the feasible interval, all budgets at once.
    g = bits.shape[1]
    wide = WaterFilling(np.broadcast_to(snr[:, None, :], (u, g, snr.shape[-1])), bandwidth_hz)
    a, b = np.repeat(p_best[:, None], g, axis=1), np.repeat(p_max[:, None], g, axis=1)
    for _ in range(iterations):
        mid = 0.5 * (a + b)
        ok = per_bit(mid, wide) <= theta
        a, b = np.where(ok, mid, a), np.where(ok, b, mid)
    out = np.where(at_max, p_max[:, None], a)
    return np.where(feasible | (at_max & (allowance >= 0)), out, np.nan), least_j


class _Evaluator:
    """Scores assignments under the budget; each device's (subchannel set -> powers, rates) is computed once."""

    def __init__(self, problem: Problem, terms):
        self.problem, self.terms = problem, terms
        k = problem.num_clients
        costs = problem.costs
        c, r = costs.grid_shape
        self.grid = c * r
        self.bits = (terms.uplink_bits[:, None] + terms.adapter_bits).reshape(self.grid)  # (G,)
        flops = problem.local_iterations * (costs.client_forward_flops + costs.client_backward_flops)
        j_per_flop = problem.device_j_per_flop if problem.device_j_per_flop is not None else np.zeros(k)
        self.allowance = problem.energy_budget_j[None, :] - flops.reshape(self.grid)[:, None] * j_per_flop  # (G, K)
        self.fixed = terms.fixed_s.reshape(self.grid, k)  # (G, K)
        self.rounds = problem.rounds_to_target[np.arange(self.grid) % r]
        self.cache: dict[tuple, tuple] = {}

    def _fill(self, keys: list[tuple]) -> None:
        todo = [key for key in dict.fromkeys(keys) if key not in self.cache]
        if not todo:
            return
        p = self.problem
        clients = np.array([key[0] for key in todo])
        masks = np.array([np.frombuffer(key[1], dtype=bool) for key in todo])
        snr = np.where(masks, p.snr_per_w[clients], 0.0)
        bits = np.broadcast_to(self.bits, (len(todo), self.grid))
        power, least = capped_power_w(snr, p.bandwidth_hz, bits, self.allowance[:, clients].T,
                                      p.max_power_w[clients], p.circuit_power_w[clients])
        wide = WaterFilling(np.broadcast_to(snr[:, None, :], (len(todo), self.grid, snr.shape[-1])), p.bandwidth_hz)
        rate, _ = wide.max_rate(np.nan_to_num(power, nan=0.0))
        for i, key in enumerate(todo):
            self.cache[key] = (power[i], rate[i], least[i])

    def __call__(self, assignments: np.ndarray):
        """For each assignment (A, N): the best grid point's objective, its index, the capped powers (A, K),
        and how far it is from the budgets, ``min over grid of max_k (E_min - B) / B`` (<= 0: feasible)."""
        p = self.problem
        k = p.num_clients
        keys = [[(client, (a == client).tobytes()) for client in range(k)] for a in assignments]
        self._fill([key for row in keys for key in row])
        power = np.array([[self.cache[key][0] for key in row] for row in keys])  # (A, K, G)
        rate = np.array([[self.cache[key][1] for key in row] for row in keys])
        least = np.array([[self.cache[key][2] for key in row] for row in keys])
        with np.errstate(divide="ignore"):
            transfer = np.where(self.bits > 0, self.bits / rate, 0.0)
        delay = np.where(np.isnan(power), np.inf, self.fixed.T[None] + transfer)  # (A, K, G)
        objective = self.rounds[None, :] * delay.max(axis=1)  # (A, G)
        excess = np.min(np.max((least - self.allowance.T[None]) / p.energy_budget_j[None, :, None], axis=1), axis=1)
        g_best = np.argmin(objective, axis=1)
        rows = np.arange(len(assignments))
        return objective[rows, g_best], g_best, power[rows, :, g_best], excess


def _solution(problem: Problem, assignment: np.ndarray, g: int, power_k: np.ndarray, policy: str) -> Solution:
    c, r = problem.costs.grid_shape
    ci, ri = divmod(int(g), r)
    wf = WaterFilling(held_snr(problem.snr_per_w, assignment), problem.bandwidth_hz)
    _, level = wf.max_rate(power_k)
    power = wf.allocation(level)
    # Keep each device's powers within its budget after the rounding of the allocation.
    power *= np.minimum(1.0, power_k / np.maximum(power.sum(axis=1), 1e-300))[:, None]
    sol = evaluate(problem, assignment, power, int(problem.costs.cuts[ci]), int(problem.costs.ranks[ri]))
    return sol.with_run(policy=policy)


def _strongest_assignment(problem: Problem) -> np.ndarray:
    """Each subchannel to the device with the highest SNR per watt on it; a device left without one takes
    its strongest subchannel from a device that holds several."""
    snr = problem.snr_per_w
    k = problem.num_clients
    assignment = np.argmax(snr, axis=0)
    for client in range(k):
        if not np.any(assignment == client):
            counts = np.bincount(assignment, minlength=k)
            free = np.flatnonzero(counts[assignment] > 1)
            assignment[free[np.argmax(snr[client, free])]] = client
    return assignment.astype(np.int64)


def _infeasible(problem: Problem) -> InfeasibleError:
    return InfeasibleError("energy budget constraint: no subchannel assignment, cut and rank lets every device "
                           f"meet its energy_budget_j {problem.energy_budget_j.tolist()} J per round")


def brute_force_energy(problem: Problem, *, max_combinations: int = 200_000) -> Solution:
    """Exact least delay under the energy budget, enumerating every assignment (small instances)."""
    check_energy_problem(problem)
    require_feasible(problem)
    k, n = problem.num_clients, problem.num_subchannels
    if k ** n > max_combinations:
        raise ValueError(f"problem: brute_force enumerates K^N = {k ** n} assignments, more than "
                         f"max_combinations={max_combinations}")
    assignments = every_assignment(k, n)
    objective, g_best, power, _ = _Evaluator(problem, round_terms(problem))(assignments)
    a = int(np.argmin(objective))
    if not np.isfinite(objective[a]):
        raise _infeasible(problem)
    return _solution(problem, assignments[a], g_best[a], power[a], "brute_force")


def _moves(assignment: np.ndarray, k: int) -> np.ndarray:
    """Every assignment one subchannel away (moved to another device) that leaves no device without one."""
    counts = np.bincount(assignment, minlength=k)
    out = []
    for n, owner in enumerate(assignment):
        if counts[owner] < 2:
            continue
        for client in range(k):
            if client != owner:
                moved = assignment.copy()
                moved[n] = client
                out.append(moved)
    return np.array(out, dtype=np.int64).reshape(-1, assignment.size)


def _score(value: float, excess: float) -> tuple[float, float]:
    """Feasible decisions by delay; infeasible ones after them, by how far they are from the budgets."""
    return (value, 0.0) if np.isfinite(value) else (np.inf, float(excess))


def solve_energy(problem: Problem, *, max_iter: int = 200, starts: int = 5) -> Solution:
    """Least delay under the energy budget (module docstring).

    Starts from equal blocks, each subchannel to the device that sees it best, and
    the greedy fills of :mod:`solver.resources` for powers from the per-device limit
    down (a tight budget favours low power, where a device wants its strongest
    subchannels); the three best starts, by delay or else by distance to the budgets,
    are improved by moving one subchannel at a time (every move scored exactly) until
    no move helps, then the greedy runs once more with each device's energy-capped
    power as its budget and the better result is kept.
    """
    check_energy_problem(problem)
    require_feasible(problem)
    terms = round_terms(problem)
    k, n = problem.num_clients, problem.num_subchannels
    c, r = problem.costs.grid_shape
    points = [(ci, ri) for ci in range(c) for ri in range(r)][:starts]

    score_all = _Evaluator(problem, terms)

    def best_of(candidates, top=1):
        values, gs, powers, excess = score_all(np.stack(candidates))
        order = sorted(range(len(candidates)), key=lambda j: _score(values[j], excess[j]))
        picked, seen = [], set()
        for i in order:
            if candidates[i].tobytes() not in seen:
                seen.add(candidates[i].tobytes())
                picked.append((_score(values[i], excess[i]), candidates[i], gs[i], powers[i]))
            if len(picked) == top:
                break
        return picked if top > 1 else picked[0]

    def polish(start):
        score, assignment, g, power = start
        for _ in range(max_iter):
            moves = _moves(assignment, k)
            if not len(moves):
                break
            found = best_of(list(moves))
            if not found[0] < score:
                break
            score, assignment, g, power = found
        return score, assignment, g, power

    candidates = [contiguous_assignment(k, n), _strongest_assignment(problem)]
    for scale in (1.0, 1e-1, 1e-2, 1e-3):
        candidates += [a for a, _ in assignment_step(problem, terms, points, scale * problem.max_power_w)]
    best = min((polish(start) for start in best_of(candidates, top=3)), key=lambda found: found[0])
    history = [best[0][0]]
    if np.isfinite(best[0][0]):
        budget = np.maximum(np.nan_to_num(best[3], nan=0.0), 1e-12 * problem.max_power_w)
        again = polish(best_of([a for a, _ in assignment_step(problem, terms, points, budget)]))
        if again[0] < best[0]:
            best = again
        history.append(best[0][0])
    (value, _), assignment, g, power = best
    if not np.isfinite(value):
        raise _infeasible(problem)
    sol = _solution(problem, assignment, g, power, "optimizer")
    return sol.with_run(policy="optimizer", iterations=len(history), objective_history_s=tuple(history))
