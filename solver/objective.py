"""The objective: round delay and total training delay, the single source of truth.

For client k with cut c and rank r (FedsLLM, arXiv 2504.14667, as the simulator
counts a round)::

    d_k = I (F^cf_{c,r} + F^cb_{c,r}) / f_k        client compute
        + I A_c / R_k                               activation uplink (main set)
        + I F^srv_{c,r} / f_server                  main server, no queueing
        + I G_c / R^dl_k                            gradient downlink (given rate)
        + D_{c,r} / R'_k                            adapter upload (fed set, or main if M == 0)

    round delay = max_k d_k,     total delay = rounds(r) * max_k d_k,

with ``R_k = sum_{n of k} B_n log2(1 + p_{k,n} g_{k,n} / noise_n)``. The server
term assumes each client has the whole server: the simulator queues clients on
it, so the simulated round is at least this long.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.problem import Problem
from solver.solution import DelayBreakdown, Solution

#: Relative slack allowed on power limits when checking a decision (float rounding).
POWER_RTOL = 1e-9

BITS_PER_BYTE = 8.0


@dataclass(frozen=True, eq=False)
class RoundTerms:
    """The delay model's coefficients on the cut x rank grid.

    ``d_k = fixed_s[c, r, k] + uplink_bits[c] / R_k + adapter_bits[c, r] / R'_k``.

    Attributes
    ----------
    compute_s, server_s, downlink_s : (C, Rk, K) float, s
        The radio-independent stages of one round.
    uplink_bits : (C,) float, bits
        ``I A_c``: activation bits sent per round.
    adapter_bits : (C, Rk) float, bits
        ``D_{c,r}``: adapter bits sent per round.
    shared_pool : bool
        True when M == 0: the adapter goes over the main set, so ``R' = R``.
    """

    compute_s: np.ndarray
    server_s: np.ndarray
    downlink_s: np.ndarray
    uplink_bits: np.ndarray
    adapter_bits: np.ndarray
    shared_pool: bool

    @property
    def fixed_s(self) -> np.ndarray:
        """(C, Rk, K) float, s: compute + server + downlink."""
        return self.compute_s + self.server_s + self.downlink_s


def round_terms(problem: Problem) -> RoundTerms:
    """Coefficients of the delay model for every cut, rank and client."""
    costs, iters = problem.costs, problem.local_iterations
    client_flops = costs.client_forward_flops + costs.client_backward_flops
    compute_s = iters * client_flops[:, :, None] / problem.device_flops_per_s
    server_s = np.broadcast_to((iters * costs.server_flops / problem.server_flops_per_s)[:, :, None],
                               compute_s.shape)
    downlink_s = np.broadcast_to(
        (iters * BITS_PER_BYTE * costs.gradient_bytes[:, None] / problem.downlink_rate_bps)[:, None, :],
        compute_s.shape)
    return RoundTerms(compute_s=compute_s, server_s=server_s, downlink_s=downlink_s,
                      uplink_bits=iters * BITS_PER_BYTE * costs.activation_bytes,
                      adapter_bits=BITS_PER_BYTE * costs.client_adapter_bytes,
                      shared_pool=problem.num_fed_subchannels == 0)


def transfer_s(bits, rate_bps) -> np.ndarray:
    """``bits / rate`` in seconds, 0 when there is nothing to send, inf at rate 0."""
    bits, rate = np.asarray(bits, dtype=float), np.asarray(rate_bps, dtype=float)
    if bits.ndim == 0 and bits > 0 and np.all(rate > 0):  # the search's case: a quotient, no warning to silence
        return bits / rate
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bits > 0, bits / rate, 0.0)


def grid_delays_s(terms: RoundTerms, uplink_rate_bps, adapter_rate_bps) -> np.ndarray:
    """(C, Rk, K) per-client round delays on the whole grid for fixed rates (K,)."""
    uplink = transfer_s(terms.uplink_bits[:, None, None], uplink_rate_bps)
    adapter = transfer_s(terms.adapter_bits[:, :, None], adapter_rate_bps)
    return terms.fixed_s + uplink + adapter


def _check_decision(problem: Problem, label: str, assignment, power_w, snr, limit_w, total_w):
    k, w = problem.num_clients, snr.shape[1]
    prefix = "" if label == "main" else "fed_"
    assign = np.asarray(assignment)
    if assign.shape != (w,) or not np.issubdtype(assign.dtype, np.integer):
        raise ValueError(f"{prefix}assignment: expected ({w},) ints (got {assign.dtype} {assign.shape})")
    if np.any((assign < -1) | (assign >= k)):
        raise ValueError(f"{prefix}assignment: expected client indices in [-1, {k - 1}] "
                         f"(got {assign.tolist()})")
    if w and np.any(np.bincount(assign[assign >= 0], minlength=k) == 0):
        idle = np.flatnonzero(np.bincount(assign[assign >= 0], minlength=k) == 0)
        raise ValueError(f"{prefix}assignment: every client needs at least one {label}-set "
                         f"subchannel (clients {idle.tolist()} have none)")
    power = np.array(power_w, dtype=float)
    if power.shape != (k, w) or not np.all(np.isfinite(power)) or np.any(power < 0):
        raise ValueError(f"{prefix}power_w: expected finite values >= 0 of shape {(k, w)} "
                         f"(got shape {power.shape})")
    holds = assign[None, :] == np.arange(k)[:, None]
    if np.any(power[~holds] > 0):
        kk, n = np.argwhere((power > 0) & ~holds)[0]
        raise ValueError(f"{prefix}power_w: exclusivity constraint: client {kk} transmits on "
                         f"{label}-set subchannel {n} held by {assign[n]}")
    per_client = power.sum(axis=1)
    over = per_client > problem.max_power_w * (1 + POWER_RTOL)
    if np.any(over):
        kk = int(np.flatnonzero(over)[0])
        raise ValueError(f"{prefix}power_w: per-device power constraint: client {kk} uses "
                         f"{per_client[kk]!r} W > max_power_w {problem.max_power_w[kk]!r} W")
    if total_w is not None and per_client.sum() > total_w * (1 + POWER_RTOL):
        raise ValueError(f"{prefix}power_w: total power constraint: {per_client.sum()!r} W > "
                         f"{prefix}total_power_w {total_w!r} W")
    return assign.astype(np.int64), power


def evaluate(problem: Problem, assignment, power_w, cut: int, rank: int,
             fed_assignment=None, fed_power_w=None) -> Solution:
    """Check a decision against every constraint and compute its delays.

    Parameters
    ----------
    problem : Problem
    assignment : (N,) int
        Client of each main-set subchannel, -1 if unused.
    power_w : (K, N) float, W
    cut, rank : int
        Values from ``problem.costs.cuts`` / ``problem.costs.ranks``.
    fed_assignment, fed_power_w : (M,) int and (K, M) float, optional
        Required when the problem has a federated set, else None.

    Returns
    -------
    Solution
        With ``total_delay_s = rounds(rank) max_k d_k`` (module docstring).

    Raises
    ------
    ValueError
        Naming the violated constraint: a candidate set, exclusivity (power on a
        subchannel the client does not hold), a client without a subchannel, the
        per-device or total power limit (relative slack ``POWER_RTOL``).
    """
    ci, ri = problem.cut_index(cut), problem.rank_index(rank)
    assign, power = _check_decision(problem, "main", assignment, power_w, problem.snr_per_w,
                                    problem.max_power_w, problem.total_power_w)
    m = problem.num_fed_subchannels
    if m == 0 and (fed_assignment is not None and np.size(fed_assignment) or
                   fed_power_w is not None and np.size(fed_power_w)):
        raise ValueError("fed_assignment, fed_power_w: expected None: the problem has no federated set")
    if m and (fed_assignment is None or fed_power_w is None):
        raise ValueError(f"fed_assignment, fed_power_w: required for the M={m} federated subchannels")
    if m:
        fed_assign, fed_power = _check_decision(problem, "fed", fed_assignment, fed_power_w,
                                                problem.fed_snr_per_w, problem.max_power_w,
                                                problem.fed_total_power_w)
    else:
        fed_assign, fed_power = np.zeros(0, dtype=np.int64), np.zeros((problem.num_clients, 0))
    rate = np.sum(problem.bandwidth_hz * np.log2(1 + power * problem.snr_per_w), axis=1)
    fed_rate = (np.sum(problem.fed_bandwidth_hz * np.log2(1 + fed_power * problem.fed_snr_per_w), axis=1)
                if m else rate.copy())
    terms = round_terms(problem)
    delays = DelayBreakdown(
        compute_s=terms.compute_s[ci, ri].copy(), server_s=terms.server_s[ci, ri].copy(),
        downlink_s=terms.downlink_s[ci, ri].copy(),
        uplink_s=transfer_s(terms.uplink_bits[ci], rate),
        adapter_s=transfer_s(terms.adapter_bits[ci, ri], fed_rate))
    round_delay = float(np.max(delays.total_s))
    rounds = float(problem.rounds_to_target[ri])
    total = rounds * round_delay
    return Solution(assignment=assign, fed_assignment=fed_assign, power_w=power, fed_power_w=fed_power,
                    cut=int(problem.costs.cuts[ci]), rank=int(problem.costs.ranks[ri]),
                    uplink_rate_bps=rate, adapter_rate_bps=fed_rate, delays=delays,
                    round_delay_s=round_delay, rounds=rounds, total_delay_s=total,
                    objective_history_s=(total,),
                    energy_j=round_energy_j(problem, ci, ri, power.sum(axis=1), fed_power.sum(axis=1), delays))


def compute_energy_j(problem: Problem, ci: int, ri: int) -> np.ndarray:
    """(K,) J: each device's compute energy in a round, ``I (F^cf + F^cb) e_k`` (0 without ``device_j_per_flop``)."""
    if problem.device_j_per_flop is None:
        return np.zeros(problem.num_clients)
    costs = problem.costs
    flops = problem.local_iterations * (costs.client_forward_flops[ci, ri] + costs.client_backward_flops[ci, ri])
    return flops * problem.device_j_per_flop


def round_energy_j(problem: Problem, ci: int, ri: int, power_w, fed_power_w, delays: DelayBreakdown) -> np.ndarray:
    """(K,) J: compute energy + ``(P_k + P_c) uplink_s + (P'_k + P_c) adapter_s`` (``P`` summed over each set).

    With ``M == 0`` the adapter goes over the main set at ``P_k``.
    """
    circuit = problem.circuit_power_w
    adapter_power = fed_power_w if problem.num_fed_subchannels else power_w
    uplink = np.where(delays.uplink_s > 0, (power_w + circuit) * delays.uplink_s, 0.0)
    adapter = np.where(delays.adapter_s > 0, (adapter_power + circuit) * delays.adapter_s, 0.0)
    return compute_energy_j(problem, ci, ri) + uplink + adapter
