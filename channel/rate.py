"""Thermal noise, signal-to-noise ratio and Shannon rate on a subchannel.

On subchannel n of bandwidth B the rate of client k is

.. math:: r_{k,n} = B \\log_2\\left(1 + \\frac{p_{k,n} \\beta_k |h_{k,n}|^2}{N_0 B}\\right),

with :math:`N_0` the noise power spectral density (-174 dBm/Hz at 290 K)
raised by the receiver's noise figure.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from channel import _check
from channel.units import dbm_to_watt

__all__ = ["noise_power_w", "snr_lin", "shannon_rate_bps"]


def noise_power_w(
    bandwidth_hz: ArrayLike,
    *,
    noise_figure_db: float,
    noise_psd_dbm_per_hz: float = -174.0,
) -> np.ndarray:
    """Receiver noise power over a bandwidth, :math:`N = N_0 B \\cdot F`.

    In dBm: :math:`N_\\mathrm{dBm} = N_{0,\\mathrm{dBm/Hz}} + F_\\mathrm{dB} + 10 \\log_{10} B`.

    Parameters
    ----------
    bandwidth_hz : array_like
        Bandwidth(s) B in Hz, > 0.
    noise_figure_db : float
        Noise figure F of the receiver in dB, >= 0 (defaults of the scenarios:
        5 dB at the base station for the uplink, 9 dB at the device for the downlink).
    noise_psd_dbm_per_hz : float
        Thermal noise density N0 in dBm/Hz (kT at 290 K: -174 dBm/Hz).

    Returns
    -------
    numpy.ndarray or numpy.float64
        Noise power in W, same shape as ``bandwidth_hz``.
    """
    b_hz = _check.positive("bandwidth_hz", bandwidth_hz)
    nf_db = float(_check.non_negative("noise_figure_db", noise_figure_db))
    return dbm_to_watt(noise_psd_dbm_per_hz + nf_db) * b_hz


def snr_lin(power_w: ArrayLike, gain_lin: ArrayLike, noise_power_w: ArrayLike) -> np.ndarray:
    """Signal-to-noise ratio, :math:`\\gamma = p g / N`.

    Parameters
    ----------
    power_w : array_like
        Transmit power(s) in W, >= 0.
    gain_lin : array_like
        Total power gain(s) g (large-scale times small-scale), >= 0.
    noise_power_w : array_like
        Noise power(s) N in W, > 0.

    Returns
    -------
    numpy.ndarray or numpy.float64
        Linear SNR, the broadcast shape.
    """
    p_w = _check.non_negative("power_w", power_w)
    g_lin = _check.non_negative("gain_lin", gain_lin)
    n_w = _check.positive("noise_power_w", noise_power_w)
    return p_w * g_lin / n_w


def shannon_rate_bps(bandwidth_hz: ArrayLike, snr_lin: ArrayLike) -> np.ndarray:
    """Shannon rate, :math:`r = B \\log_2(1 + \\gamma)`.

    Parameters
    ----------
    bandwidth_hz : array_like
        Bandwidth(s) B in Hz, >= 0.
    snr_lin : array_like
        Linear SNR(s) gamma, >= 0, broadcastable against ``bandwidth_hz``.

    Returns
    -------
    numpy.ndarray or numpy.float64
        Rate(s) in bit/s, the broadcast shape.
    """
    b_hz = _check.non_negative("bandwidth_hz", bandwidth_hz)
    gamma = _check.non_negative("snr_lin", snr_lin)
    # log1p keeps the rate accurate at low SNR, where 1 + gamma rounds to 1.
    return b_hz * np.log1p(gamma) / np.log(2.0)
