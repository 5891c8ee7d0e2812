"""Uplink rates over a share of one band (FDMA/OFDMA) and their closed-form inverses.

Client k holding a share ``beta`` of the band ``B`` Hz, at its full power ``P_k``
W spread over that share, with linear gain ``g_k`` and noise PSD ``N0`` W/Hz::

    R_k(beta) = beta B log2(1 + a_k / beta),      a_k = P_k g_k / (B N0),

increasing and concave in ``beta``, with ``R_k'(beta) = B psi(a_k / beta) / ln 2``,
``psi(u) = ln(1 + u) - u / (1 + u)``. Both ``R`` and ``R'`` invert in closed form
with the Lambert W function. :class:`FdmaRound` holds one round (payloads, compute,
SNRs) and gives the least latency of a round by equal finish times. Used by
:mod:`solver.tsfa`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.special import lambertw

from solver._checks import as_array

LN2 = float(np.log(2.0))

def uplink_rate_bps(share, snr, bandwidth_hz: float) -> np.ndarray:
    """``R(beta) = beta B log2(1 + a / beta)``, b/s; ``snr = a = P g / (B N0)``."""
    share = np.asarray(share, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = bandwidth_hz * share * np.log1p(snr / share) / LN2
    return np.where(share > 0, rate, 0.0)


def share_for_rate(rate_bps, snr, bandwidth_hz: float) -> np.ndarray:
    """The share ``beta`` with ``R(beta) = rate_bps``; ``inf`` when no share reaches it.

    With ``y = a / beta`` and ``m = rate ln2 / (a B) < 1``, ``ln(1 + y) = m y`` whose
    positive root is ``y = -W_{-1}(-m e^{-m}) / m - 1``; one Newton step polishes it.
    Near ``m = 1`` (``d = 1 - m < 1e-4``, the branch point of ``W``) the series
    ``y = 2 d + 8 d^2 / 3 + 28 d^3 / 9`` is used instead.
    """
    m = np.asarray(rate_bps, dtype=float) * LN2 / (bandwidth_hz * np.asarray(snr, dtype=float))
    reachable = (m > 0) & (m < 1)
    mm = np.where(reachable, m, 0.5)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        y = -lambertw(-mm * np.exp(-mm), -1).real / mm - 1
        slope = 1 / (1 + y) - mm
        polished = y - (np.log1p(y) - mm * y) / slope
        y = np.where((slope < 0) & (polished > 0) & np.isfinite(polished), polished, y)
        d = 1 - mm
        y = np.where(d < 1e-4, 2 * d + d**2 * (8 / 3) + d**3 * (28 / 9), y)
        share = snr / y
    return np.where(reachable, share, np.where(m <= 0, 0.0, np.inf))


def quiet(function):
    """Run ``function`` with numpy's floating-point warnings off.

    The solvers it wraps handle ``inf`` and ``nan`` (an unreachable rate, a client
    on a bound) themselves.
    """
    @functools.wraps(function)
    def quiet(*args, **kwargs):
        with np.errstate(all="ignore"):
            return function(*args, **kwargs)
    return quiet


def psi(u):
    """``ln(1 + u) - u / (1 + u)``: ``R'(beta) = B psi(a / beta) / ln 2``."""
    return np.log1p(u) - u / (1 + u)


def psi_inverse(s):
    """``u`` with ``psi(u) = s``: ``u = -1 / W_0(-e^{-(s+1)}) - 1``, then a Newton step.

    Below ``s = 1e-8`` (where ``W_0`` sits on its branch point) the series
    ``u = e + 2 e^2 / 3 + 13 e^3 / 36``, ``e = sqrt(2 s)``, is used instead.
    """
    s = np.asarray(s, dtype=float)
    u = -1 / lambertw(-np.exp(-(s + 1)), 0).real - 1
    polished = u - (psi(u) - s) * (1 + u) ** 2 / u
    e = np.sqrt(2 * np.maximum(s, 0.0))
    u = np.where((u > 0) & np.isfinite(polished) & (polished > 0), polished, u)
    return np.where(s < 1e-8, e + e**2 * (2 / 3) + e**3 * (13 / 36), u)


def decreasing_root(fun, lo, hi, gap_lo, gap_hi, *, kinks=None, max_iter: int = 100):
    """Rows of ``x`` in ``[lo, hi]`` with ``fun(x)[0] = 1``, by safeguarded Newton.

    ``fun(x) -> (total, slope)`` is decreasing in ``x``; ``gap_lo = total(lo) - 1 >=
    0 >= gap_hi = total(hi) - 1`` (``inf`` allowed). A Newton step that leaves
    the bracket is replaced by false position (Illinois: the value kept at an end
    that survives twice in a row is halved; bisection where it is undefined).
    ``kinks`` (rows, m): where ``total`` may change slope; from a flat point the
    search jumps to the nearest kink towards the root (a plateau costs one step).
    """
    lo, hi = np.array(lo, dtype=float), np.array(hi, dtype=float)
    gap_lo, gap_hi = np.array(gap_lo, dtype=float), np.array(gap_hi, dtype=float)
    step = np.full(lo.shape, np.nan)
    was_above = np.zeros(lo.shape, dtype=int)  # +1: last point was above the root, -1 below
    x, done = 0.5 * (lo + hi), np.zeros(lo.shape, dtype=bool)
    for _ in range(max_iter):
        falsi = lo + gap_lo * (hi - lo) / (gap_lo - gap_hi)
        inside = np.isfinite(step) & (step > lo) & (step < hi)
        falsi_ok = np.isfinite(falsi) & (falsi > lo) & (falsi < hi)
        x = np.where(done, x, np.where(inside, step, np.where(falsi_ok, falsi, 0.5 * (lo + hi))))
        total, slope = fun(x)
        gap = total - 1
        above = gap > 0
        side = np.where(above, 1, -1)
        lo, gap_lo = np.where(above, x, lo), np.where(above, gap, np.where(side == was_above, gap_lo / 2, gap_lo))
        hi, gap_hi = np.where(above, hi, x), np.where(above, np.where(side == was_above, gap_hi / 2, gap_hi), gap)
        was_above = side
        done |= (np.abs(gap) <= 1e-12) | (hi - lo <= 1e-14 * np.maximum(np.abs(hi), 1.0))
        if np.all(done):
            break
        step = x - gap / slope
        if kinks is not None:
            ahead = np.where((kinks > x[:, None]) & (kinks < hi[:, None]), kinks, np.inf).min(axis=1)
            behind = np.where((kinks < x[:, None]) & (kinks > lo[:, None]), kinks, -np.inf).max(axis=1)
            jump = np.where(above, ahead, behind)
            step = np.where((slope == 0) & np.isfinite(jump), jump, step)
    return x


@dataclass(frozen=True, eq=False)
class FdmaRound:
    """One round's validated inputs: per-client arrays are (K,), ``snr`` is ``a_k``.

    Built by :meth:`build`, which appends every problem found to a list.
    """

    dense_bits: np.ndarray
    compute_s: np.ndarray
    snr: np.ndarray
    bandwidth_hz: float
    fixed_s: float

    @classmethod
    def build(cls, problems, dense_bits, compute_s, gains, powers_w, noise_psd_w_per_hz,
              bandwidth_hz, fixed_s, shape=None):
        """Check the inputs (units as in :func:`solver.tsfa.tsfa_decision`), appending
        each problem to ``problems``; ``shape`` forces the per-client shape."""
        bits = np.asarray(dense_bits, dtype=float)
        shape = bits.shape if shape is None else shape
        if len(shape) != 1 or shape[0] == 0:
            problems.append(f"dense_bits: expected a non-empty 1-D array (got shape {bits.shape})")
            shape = (1,)
        bits = as_array(problems, "dense_bits", bits, shape, lower=0.0, strict=True)
        compute = as_array(problems, "compute_s", compute_s, shape, lower=0.0)
        gains = as_array(problems, "gains", gains, shape, lower=0.0, strict=True)
        powers = as_array(problems, "powers_w", powers_w, shape, lower=0.0, strict=True)
        noise = as_array(problems, "noise_psd_w_per_hz", noise_psd_w_per_hz, (), lower=0.0, strict=True)
        band = as_array(problems, "bandwidth_hz", bandwidth_hz, (), lower=0.0, strict=True)
        fixed = as_array(problems, "fixed_s", fixed_s, (), lower=0.0)
        with np.errstate(all="ignore"):
            snr = powers * gains / (float(band) * float(noise))
        return cls(bits, compute, snr, float(band), float(fixed))

    @quiet
    def min_latency(self, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Least latency (R,) and its shares (R, K) for rows of payloads ``bits`` (R, K).

        Every client finishes together (``sum beta = 1``): ``sum_k beta_k(L)`` is
        decreasing (and convex) in ``L``; its root lies between the latency of the
        slowest client alone on the whole band and the latency with equal shares.
        """
        k = self.snr.size
        alone = self.compute_s + bits / uplink_rate_bps(1.0, self.snr, self.bandwidth_hz)
        equal = self.compute_s + bits / uplink_rate_bps(1.0 / k, self.snr, self.bandwidth_hz)
        lo, hi = alone.max(axis=-1), equal.max(axis=-1)

        def shares(latency):
            time_s = latency[:, None] - self.compute_s
            beta = share_for_rate(bits / time_s, self.snr, self.bandwidth_hz)
            slope = -(bits / time_s**2) * LN2 / (self.bandwidth_hz * psi(self.snr / beta))
            return beta, slope

        total = lambda x: tuple(a.sum(axis=-1) for a in shares(x))  # noqa: E731
        upload = decreasing_root(total, lo, hi, total(lo)[0] - 1, total(hi)[0] - 1)
        beta = shares(upload)[0]
        beta = beta / np.maximum(beta.sum(axis=-1, keepdims=True), 1.0)
        return upload + self.fixed_s, beta

    def latency_s(self, share: np.ndarray, bits: np.ndarray) -> float:
        """``max_k (compute_s + bits / R(share)) + fixed_s``."""
        rate = uplink_rate_bps(share, self.snr, self.bandwidth_hz)
        return float(np.max(self.compute_s + bits / rate) + self.fixed_s)
