"""TSFA's decisions: the LoRA rank offline, bandwidth and sparsification online.

SOFT/TSFA (arXiv 2505.00333): wireless federated LoRA where client k uploads a
sparsified adapter; the sparsification ratio ``rho_k`` is the fraction withheld,
so it sends ``bits_k(rho_k) = (1 - rho_k) dense_bits[k]``. The paper's constants
are not public here; every choice below is a documented parameter.

Model of one round
------------------
Client k computes for ``compute_s[k]`` s, then uploads over a share ``beta_k``
of the uplink bandwidth ``B`` Hz (FDMA/OFDMA: ``sum_k beta_k <= 1``,
``beta_k > 0``) at its full power ``P_k`` W spread over its share, with channel
gain ``g_k`` (linear, the mean over subchannels the base station knows) and noise
PSD ``N0`` W/Hz::

    R_k(beta) = beta B log2(1 + a_k / beta),      a_k = P_k g_k / (B N0),

increasing and concave in ``beta``. The round latency is
``L = max_k (compute_s[k] + bits_k / R_k(beta_k)) + fixed_s`` (``fixed_s``:
aggregation and broadcast, a constant of the caller).

Penalty (our choice): ``sum_k w_k rho_k`` with the data weights ``w`` (summing to
1), a proxy of the accuracy lost to sparsification (the paper's convergence bound
has a sparsification-error term that grows with ``rho``).

Online stage (Lyapunov drift-plus-penalty): each round, minimise
``V penalty + Q(t) L`` over ``beta`` and ``rho_k in [rho_min, rho_max]``
(:func:`tsfa_decision`), where the :class:`VirtualQueue` ``Q`` accumulates the
excess of the realised latency over the long-term budget. Method, global over
the latency:

- For a target latency ``L`` the least penalty ``P(L)`` solves a convex problem:
  client k's rate must carry ``bits_k(rho_k)`` in ``t_k = L - fixed_s - compute_s[k]``, so
  ``rho_k = 1 - t_k R_k(beta_k) / dense_bits[k]`` and ``P(L)`` is a weighted
  sum-rate maximisation over the box ``beta_k in [share at rho_max, share at
  rho_min]`` with ``sum beta <= 1``; its KKT condition
  ``(w_k t_k / D_k) R_k'(beta_k) = lambda`` has a closed form in ``beta_k`` (Lambert
  W), and ``lambda`` is found by a safeguarded Newton search.
- ``P(L)`` is non-increasing but not convex in ``L``, so ``L`` is searched by
  branch and bound on ``[L_min, L_top]`` (the least latency at ``rho_max`` and at
  ``rho_min``): on a cell ``[L_i, L_j]`` the objective is at least
  ``V P(L_j) + Q L_i``; cells that cannot beat the best point found by more than
  a relative ``1e-3`` are pruned, the others are split in four; a local zoom
  (65 points, the step divided by 32, twice) then polishes the best point.
- The chosen ``rho`` is then given the least latency it allows (equal finish
  times, every share used), which never raises the objective. With ``Q = 0`` the
  penalty minimisers are ``rho = rho_min`` and the smallest latency among them is
  kept; with ``V = 0`` it is ``rho = rho_max`` at the least latency.

Offline stage: :func:`offline_rank`. :func:`shares_to_subchannels` turns shares
into whole subchannels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cosim.errors import InfeasibleError
from solver._checks import as_array
from solver.fdma import FdmaRound, decreasing_root, psi, psi_inverse, quiet, share_for_rate, uplink_rate_bps

_BNB_TOL = 1e-3  # branch and bound: relative optimality gap on the objective, then a zoom


@dataclass(frozen=True, eq=False, kw_only=True)
class TsfaDecision:
    """One round's online decision.

    Attributes
    ----------
    bandwidth_share : (K,) float
        ``beta_k > 0``, summing to at most 1.
    sparsity : (K,) float
        ``rho_k in [rho_min, rho_max]``: the fraction of each adapter withheld.
    latency_s : float, s
        The round latency this decision gives (with the gains it was taken on).
    penalty : float
        ``sum_k w_k rho_k``.
    objective : float
        ``V penalty + Q latency_s``.
    """

    bandwidth_share: np.ndarray
    sparsity: np.ndarray
    latency_s: float
    penalty: float
    objective: float


class VirtualQueue:
    """The long-term latency budget as a virtual queue (Neely, drift-plus-penalty).

    ``Q(0) = 0`` and ``Q(t+1) = max(Q(t) + L(t) - budget_s, 0)`` where ``L(t)`` is
    the realised latency of round t. Since ``Q(T) >= sum_t L(t) - T budget_s``,
    the average latency over T rounds is at most ``budget_s + Q(T) / T``.
    """

    def __init__(self, budget_s: float):
        budget = float(budget_s)
        if not np.isfinite(budget) or budget <= 0:
            raise ValueError(f"budget_s: expected a finite number > 0 (got {budget_s!r})")
        self.budget_s = budget
        self._backlog = [0.0]

    @property
    def backlog_s(self) -> float:
        """The current ``Q(t)``, s."""
        return self._backlog[-1]

    @property
    def history(self) -> tuple[float, ...]:
        """``(Q(0), Q(1), ..., Q(t))``, s."""
        return tuple(self._backlog)

    def update(self, latency_s: float) -> float:
        """Record a realised round latency (s) and return the new backlog."""
        latency = float(latency_s)
        if not np.isfinite(latency) or latency < 0:
            raise ValueError(f"latency_s: expected a finite number >= 0 (got {latency_s!r})")
        self._backlog.append(max(self.backlog_s + latency - self.budget_s, 0.0))
        return self.backlog_s


def _least_penalty(radio: FdmaRound, weights, latency_s, rho_min: float, rho_max: float):
    """``P(L)`` (n,) and its sparsity (n, K) for each target latency in ``latency_s`` (n,).

    ``inf`` where even ``rho_max`` does not fit in ``L``.
    """
    time_s = latency_s[:, None] - radio.fixed_s - radio.compute_s
    d, snr, band = radio.dense_bits, radio.snr, radio.bandwidth_hz
    hi = share_for_rate((1 - rho_min) * d / time_s, snr, band)  # share at rho_min
    lo = share_for_rate((1 - rho_max) * d / time_s, snr, band)  # share at rho_max
    lo = np.where(time_s > 0, lo, np.inf)
    hi = np.where(time_s > 0, np.minimum(hi, 1.0), 1.0)  # no client needs more than the band
    beta = hi.copy()
    feasible = lo.sum(axis=1) <= 1 + 1e-9
    split = feasible & (hi.sum(axis=1) > 1)
    if np.any(split):
        # Maximise sum_k c_k R_k(beta_k), c_k = w_k t_k / D_k, over the box: KKT
        # c_k B psi(a_k / beta_k) / ln 2 = lambda inside it; Newton on log(lambda).
        t, b_lo, b_hi = time_s[split], lo[split], hi[split]
        scale = weights * t / d * band / np.log(2.0)  # lambda = scale * psi(a / beta)
        # Client k is free between the prices at which it sits on b_hi and on b_lo.
        bounds = np.concatenate([b_hi, b_lo], axis=1)
        kinks = np.log(np.maximum(np.tile(scale, 2) * psi(np.tile(snr, 2) / bounds), 1e-300))
        low, high = kinks.min(axis=1) - 1e-9, kinks.max(axis=1) + 1e-9

        def shares(log_price):
            s = np.exp(log_price)[:, None] / scale
            u = psi_inverse(s)
            free = snr / u
            slope = np.where((free > b_lo) & (free < b_hi), -snr * s * (1 + u) ** 2 / u**3, 0.0)
            return np.clip(free, b_lo, b_hi), slope

        total = lambda x: tuple(a.sum(axis=1) for a in shares(x))  # noqa: E731
        log_price = decreasing_root(total, low, high, b_hi.sum(axis=1) - 1, b_lo.sum(axis=1) - 1,
                                     kinks=kinks)
        chosen = shares(log_price)[0]
        beta[split] = chosen / np.maximum(chosen.sum(axis=1, keepdims=True), 1.0)
    sent = time_s * uplink_rate_bps(beta, snr, band)
    rho = np.clip(1 - sent / d, rho_min, rho_max)
    rho[rho < rho_min + 1e-12] = rho_min  # rounding of a dense client
    rho[~feasible] = rho_max
    penalty = np.where(feasible, rho @ weights, np.inf)
    return penalty, rho


@quiet
def _search_latency(radio, weights, v, q, l_min, l_top, rho_min, rho_max) -> np.ndarray:
    """Best sparsity (K,): branch and bound over the target latency, then a local zoom."""
    def objective_at(latency):
        penalty, rho = _least_penalty(radio, weights, latency, rho_min, rho_max)
        return v * penalty + q * latency, penalty, rho

    grid = np.linspace(l_min, l_top, 33)
    objective, penalty, rho = objective_at(grid)
    i = int(np.argmin(objective))
    best, best_latency, best_rho = objective[i], grid[i], rho[i]
    left, right, right_penalty = grid[:-1], grid[1:], penalty[1:]
    width = grid[1] - grid[0]
    for _ in range(40):
        bound = v * right_penalty + q * left  # P is non-increasing
        alive = bound < best - _BNB_TOL * abs(best)
        left, right, right_penalty, bound = left[alive], right[alive], right_penalty[alive], bound[alive]
        if left.size == 0:
            break
        pick = np.argsort(bound, kind="stable")[:64]
        rest = np.ones(left.size, dtype=bool)
        rest[pick] = False
        points = left[pick, None] + (right - left)[pick, None] * np.linspace(0, 1, 5)[None, 1:-1]
        width = float(np.min(points[:, 1] - points[:, 0]))
        objective, penalty, rho = objective_at(points.ravel())
        i = int(np.argmin(objective))
        if objective[i] < best:
            best, best_latency, best_rho = objective[i], points.ravel()[i], rho[i]
        edges = np.concatenate([left[pick, None], points, right[pick, None]], axis=1)
        edge_penalty = np.concatenate([penalty.reshape(points.shape), right_penalty[pick, None]], axis=1)
        left = np.concatenate([left[rest], edges[:, :-1].ravel()])
        right = np.concatenate([right[rest], edges[:, 1:].ravel()])
        right_penalty = np.concatenate([right_penalty[rest], edge_penalty.ravel()])
    # Within the gap left the objective is smooth around its minimiser: zoom on it.
    for _ in range(2):
        points = np.clip(best_latency + width * np.linspace(-1, 1, 65), l_min, l_top)
        objective, _, rho = objective_at(points)
        i = int(np.argmin(objective))
        if objective[i] < best:
            best, best_latency, best_rho = objective[i], points[i], rho[i]
        width /= 32
    return best_rho


def _check_sparsity_bounds(problems, rho_min, rho_max):
    ok = np.isfinite(rho_min) and np.isfinite(rho_max) and 0 <= rho_min <= rho_max < 1
    if not ok:
        problems.append(f"rho_min, rho_max: expected 0 <= rho_min <= rho_max < 1 "
                        f"(got {rho_min!r}, {rho_max!r})")


def tsfa_decision(*, dense_bits, compute_s, gains, powers_w, noise_psd_w_per_hz: float,
                  bandwidth_hz: float, fixed_s: float, weights, v: float, queue_s: float,
                  rho_min: float, rho_max: float) -> TsfaDecision:
    """TSFA's online decision: minimise ``V sum_k w_k rho_k + Q L`` for one round.

    Parameters
    ----------
    dense_bits : (K,) float, bits
        Each client's adapter upload without sparsification.
    compute_s : (K,) float, s
        Local compute before the upload.
    gains : (K,) float
        Linear channel gain of each client (mean over subchannels).
    powers_w : (K,) float or float, W
        Transmit power, spread over the client's share.
    noise_psd_w_per_hz, bandwidth_hz : float
        Noise PSD ``N0`` (W/Hz) and the total uplink bandwidth ``B`` (Hz).
    fixed_s : float, s
        Aggregation and broadcast time added to every round.
    weights : (K,) float
        Data weights ``w_k >= 0`` summing to 1.
    v : float
        Penalty weight ``V >= 0`` of drift-plus-penalty.
    queue_s : float, s
        The virtual queue's backlog ``Q(t) >= 0`` (:class:`VirtualQueue`).
    rho_min, rho_max : float
        Bounds of the sparsification ratio, ``0 <= rho_min <= rho_max < 1``.

    Returns
    -------
    TsfaDecision
        Shares summing to 1 (every share used) and the least latency they give.
    """
    problems: list[str] = []
    radio = FdmaRound.build(problems, dense_bits, compute_s, gains, powers_w, noise_psd_w_per_hz,
                         bandwidth_hz, fixed_s)
    before = len(problems)
    weights = as_array(problems, "weights", weights, radio.dense_bits.shape, lower=0.0)
    if len(problems) == before and abs(weights.sum() - 1) > 1e-6:
        problems.append(f"weights: expected values summing to 1 (got sum {weights.sum()!r})")
    v = float(as_array(problems, "v", v, (), lower=0.0))
    q = float(as_array(problems, "queue_s", queue_s, (), lower=0.0))
    _check_sparsity_bounds(problems, rho_min, rho_max)
    if problems:
        raise ValueError("invalid TSFA round:\n" + "\n".join(problems))
    k = radio.dense_bits.size
    if q == 0:
        rho = np.full(k, float(rho_min))
    elif v == 0:
        rho = np.full(k, float(rho_max))
    else:
        bounds = np.stack([(1 - rho_max) * radio.dense_bits, (1 - rho_min) * radio.dense_bits])
        (l_min, l_top), _ = radio.min_latency(bounds)
        rho = _search_latency(radio, weights, v, q, l_min, l_top, float(rho_min), float(rho_max))
    bits = (1 - rho) * radio.dense_bits
    _, share = radio.min_latency(bits[None, :])
    share = share[0]
    latency = radio.latency_s(share, bits)
    penalty = float(rho @ weights)
    share.setflags(write=False)
    rho.setflags(write=False)
    return TsfaDecision(bandwidth_share=share, sparsity=rho, latency_s=latency,
                        penalty=penalty, objective=v * penalty + q * latency)


def offline_rank(candidate_ranks, dense_bits_by_rank, compute_s_by_rank, gains, powers_w,
                 noise_psd_w_per_hz: float, bandwidth_hz: float, fixed_s,
                 budget_s: float, rho_min: float, rho_max: float) -> int:
    """TSFA's offline stage: the LoRA rank, fixed for the whole training.

    Rule: the largest rank whose least round latency with ``rho = rho_min`` (as
    dense as allowed) fits ``budget_s``: the online stage then meets the budget
    on the mean channel without sparsifying beyond ``rho_min``. If none, the budget
    is tight: the smallest rank whose least latency with ``rho = rho_max`` fits (the
    cheapest adapter; the virtual queue will raise the sparsification to meet the
    budget, and the first rounds, sent dense while the queue is empty, cost least).
    An earlier rule took the largest rank here; in a 3-round SmolLM2 run its dense
    first round alone overran the budget by 36 %. If none,
    :class:`~cosim.errors.InfeasibleError` naming ``tsfa.latency_budget_s``.

    Parameters
    ----------
    candidate_ranks : (R,) int
    dense_bits_by_rank, compute_s_by_rank : (R, K) float, bits and s
        Each rank's dense adapter upload and local compute per client.
    gains, powers_w, noise_psd_w_per_hz, bandwidth_hz, rho_min, rho_max
        As in :func:`tsfa_decision`.
    fixed_s : float or (R,) float, s
        Aggregation and broadcast, one value for every rank or one per rank (a
        larger rank's adapter takes longer to broadcast).
    budget_s : float, s
        The long-term average round-latency budget.
    """
    problems: list[str] = []
    ranks = np.asarray(candidate_ranks)
    if ranks.ndim != 1 or ranks.size == 0:
        problems.append(f"candidate_ranks: expected a non-empty 1-D array (got {candidate_ranks!r})")
        ranks = np.zeros(1, dtype=int)
    bits = np.asarray(dense_bits_by_rank, dtype=float)
    k = bits.shape[-1] if bits.ndim == 2 else 1
    bits = as_array(problems, "dense_bits_by_rank", bits, (ranks.size, k), lower=0.0, strict=True)
    compute = as_array(problems, "compute_s_by_rank", compute_s_by_rank, (ranks.size, k), lower=0.0)
    budget = float(as_array(problems, "budget_s", budget_s, (), lower=0.0, strict=True))
    fixed = np.broadcast_to(np.asarray(fixed_s, dtype=float), (ranks.size,)) if np.ndim(fixed_s) == 0 else fixed_s
    fixed = as_array(problems, "fixed_s", fixed, (ranks.size,), lower=0.0)
    _check_sparsity_bounds(problems, rho_min, rho_max)
    radios = [FdmaRound.build(problems if r == 0 else [], bits[r], compute[r], gains, powers_w,
                           noise_psd_w_per_hz, bandwidth_hz, float(fixed[r]), shape=(k,))
              for r in range(ranks.size)]
    if problems:
        raise ValueError("invalid TSFA offline stage:\n" + "\n".join(problems))
    dense = np.array([radio.min_latency((1 - rho_min) * radio.dense_bits[None])[0][0] for radio in radios])
    sparse = np.array([radio.min_latency((1 - rho_max) * radio.dense_bits[None])[0][0] for radio in radios])
    fits = np.flatnonzero(dense <= budget)
    if fits.size:
        return int(ranks[fits[np.argmax(ranks[fits])]])
    fits = np.flatnonzero(sparse <= budget)
    if fits.size:
        return int(ranks[fits[np.argmin(ranks[fits])]])
    best = int(np.argmin(sparse))
    raise InfeasibleError(
        f"tsfa.latency_budget_s: no rank's round fits the budget of {budget:.6g} s; the smallest "
        f"latency achievable is {sparse[best]:.6g} s (rank {ranks[best]} at rho_max={rho_max})")


def shares_to_subchannels(shares, n_subchannels: int) -> np.ndarray:
    """Whole subchannels from bandwidth shares: (K,) int counts, each >= 1, summing to N.

    The quota of client k is ``q_k = N shares_k / sum(shares)``. Every client first
    gets one subchannel; the other ``N - K`` go in proportion to the quota above
    that first one, ``max(q_k - 1, 0)`` (evenly when every quota is below 1), by
    largest remainders (ties to the lower index), so a client with a quota under
    one subchannel gets exactly one.
    """
    shares = np.asarray(shares, dtype=float)
    problems: list[str] = []
    if shares.ndim != 1 or shares.size == 0:
        raise ValueError(f"shares: expected a non-empty 1-D array (got shape {shares.shape})")
    shares = as_array(problems, "shares", shares, shares.shape, lower=0.0)
    if not problems and shares.sum() <= 0:
        problems.append("shares: expected a positive sum (got all zeros)")
    if isinstance(n_subchannels, bool) or not isinstance(n_subchannels, (int, np.integer)):
        problems.append(f"n_subchannels: expected an integer (got {n_subchannels!r})")
    if problems:
        raise ValueError("\n".join(problems))
    k, n = shares.size, int(n_subchannels)
    if n < k:
        raise InfeasibleError(f"subchannel constraint: every client needs at least one subchannel, "
                              f"but there are K={k} clients and only N={n} subchannels")
    extra = np.maximum(n * shares / shares.sum() - 1, 0.0)
    extra = extra / extra.sum() if extra.sum() > 0 else np.full(k, 1.0 / k)
    quota = extra * (n - k)
    counts = np.floor(quota).astype(np.int64)
    left = (n - k) - int(counts.sum())
    order = np.lexsort((np.arange(k), -(quota - counts)))  # largest remainder, lower index first
    counts[order[:left]] += 1
    return counts + 1
