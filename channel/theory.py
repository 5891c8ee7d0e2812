"""Closed forms of Rayleigh fading, for tests and for the optimiser.

With :math:`X = |h|^2 \\sim \\mathrm{Exp}(1)` and mean SNR :math:`\\bar\\gamma`:

- ergodic capacity :math:`E[\\log_2(1 + \\bar\\gamma X)] = e^{1/\\bar\\gamma} E_1(1/\\bar\\gamma) / \\ln 2`
  (Goldsmith, *Wireless Communications*, 2005, sec. 4.2.4; Alouini & Goldsmith 1999);
- outage probability :math:`P[B \\log_2(1 + \\bar\\gamma X) < R] = 1 - e^{-(2^{R/B} - 1)/\\bar\\gamma}`;
- Jakes' (Clarke's) autocorrelation :math:`E[h(t) h^*(t + \\tau)] = J_0(2\\pi f_d \\tau)`
  (Jakes, *Microwave Mobile Communications*, 1974).
"""

from __future__ import annotations

import numpy as np
import scipy.special
from numpy.typing import ArrayLike

from channel import _check

__all__ = ["ergodic_rayleigh_capacity_bps_per_hz", "outage_probability", "jakes_autocorrelation"]

# Beyond this x = 1/snr, e^x overflows soon and E1(x) underflows: use the asymptotic series.
_X_ASYMPTOTIC = 600.0


def _exp_e1(x: np.ndarray) -> np.ndarray:
    """:math:`e^x E_1(x)` for x > 0, accurate from tiny to huge x."""
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    small = x <= _X_ASYMPTOTIC
    out[small] = np.exp(x[small]) * scipy.special.exp1(x[small])
    # e^x E1(x) ~ (1/x) sum_k (-1)^k k! / x^k; at x > 600 ten terms leave < 1e-20 relative error.
    xl = x[~small]
    term = np.ones_like(xl)
    total = np.ones_like(xl)
    for k in range(1, 10):
        term = -term * k / xl
        total += term
    out[~small] = total / xl
    return out


def ergodic_rayleigh_capacity_bps_per_hz(mean_snr_lin: ArrayLike) -> np.ndarray:
    """Ergodic capacity of a Rayleigh channel, :math:`e^{1/\\bar\\gamma} E_1(1/\\bar\\gamma) / \\ln 2`.

    Parameters
    ----------
    mean_snr_lin : array_like
        Mean SNR :math:`\\bar\\gamma = p \\beta / N` (linear), >= 0.

    Returns
    -------
    numpy.ndarray or numpy.float64
        :math:`E[\\log_2(1 + \\bar\\gamma X)]` in bit/s/Hz, same shape; 0 at
        :math:`\\bar\\gamma = 0`. Multiply by the bandwidth for bit/s.
    """
    g = _check.non_negative("mean_snr_lin", mean_snr_lin)
    flat = np.atleast_1d(g).astype(float).ravel()
    out = np.zeros_like(flat)
    pos = flat > 0.0
    out[pos] = _exp_e1(1.0 / flat[pos]) / np.log(2.0)
    return out.reshape(g.shape)[()]


def outage_probability(rate_bps: ArrayLike, bandwidth_hz: ArrayLike, mean_snr_lin: ArrayLike) -> np.ndarray:
    """Probability that a Rayleigh channel cannot carry a rate, :math:`1 - e^{-(2^{R/B} - 1)/\\bar\\gamma}`.

    Parameters
    ----------
    rate_bps : array_like
        Target rate R in bit/s, >= 0.
    bandwidth_hz : array_like
        Bandwidth B in Hz, > 0.
    mean_snr_lin : array_like
        Mean SNR :math:`\\bar\\gamma` (linear), > 0.

    Returns
    -------
    numpy.ndarray or numpy.float64
        :math:`P[B \\log_2(1 + \\bar\\gamma X) < R]`, the broadcast shape.
    """
    r_bps = _check.non_negative("rate_bps", rate_bps)
    b_hz = _check.positive("bandwidth_hz", bandwidth_hz)
    g = _check.positive("mean_snr_lin", mean_snr_lin)
    # expm1 keeps both the threshold 2^{R/B} - 1 and the probability accurate when they are small.
    snr_threshold_lin = np.expm1(r_bps / b_hz * np.log(2.0))
    return -np.expm1(-snr_threshold_lin / g)


def jakes_autocorrelation(doppler_hz: ArrayLike, lag_s: ArrayLike) -> np.ndarray:
    """Autocorrelation of Clarke/Jakes fading, :math:`J_0(2\\pi f_d \\tau)`.

    Parameters
    ----------
    doppler_hz : array_like
        Maximum Doppler shift f_d in Hz, >= 0.
    lag_s : array_like
        Time lag tau in s (its sign does not matter).

    Returns
    -------
    numpy.ndarray or numpy.float64
        Normalised autocorrelation of h, the broadcast shape.
    """
    fd_hz = _check.non_negative("doppler_hz", doppler_hz)
    tau_s = np.asarray(lag_s, dtype=float)
    return scipy.special.j0(2.0 * np.pi * fd_hz * tau_s)
