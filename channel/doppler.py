"""Time variation of a mobile channel: Doppler shift, coherence time, block correlation.

A device moving at speed v sees a maximum Doppler shift :math:`f_d = v f_c / c`;
under Clarke's isotropic-scattering model the channel's autocorrelation is
:math:`J_0(2\\pi f_d \\tau)` (Clarke 1968; Jakes 1974; Rappaport, *Wireless
Communications*, 2nd ed., sec. 5.4 and 5.7).
"""

from __future__ import annotations

import numpy as np
import scipy.special
from numpy.typing import ArrayLike

from channel import _check

__all__ = ["SPEED_OF_LIGHT_MPS", "doppler_hz", "coherence_time_s", "gauss_markov_rho"]

SPEED_OF_LIGHT_MPS = 299_792_458.0


def doppler_hz(speed_mps: ArrayLike, carrier_hz: ArrayLike) -> np.ndarray:
    """Maximum Doppler shift, :math:`f_d = v f_c / c`.

    Parameters
    ----------
    speed_mps : array_like
        Device speed(s) v in m/s, >= 0 (3 km/h = 0.833 m/s).
    carrier_hz : array_like
        Carrier frequency f_c in Hz, > 0 (default scenario: 2 GHz).

    Returns
    -------
    numpy.ndarray or numpy.float64
        Doppler shift in Hz (about 5.6 Hz at 3 km/h and 2 GHz).
    """
    v_mps = _check.non_negative("speed_mps", speed_mps)
    fc_hz = _check.positive("carrier_hz", carrier_hz)
    return v_mps * fc_hz / SPEED_OF_LIGHT_MPS


def coherence_time_s(doppler_hz: ArrayLike) -> np.ndarray:
    """Coherence time by Clarke's rule of thumb, :math:`T_c = 0.423 / f_d`.

    :math:`0.423 = \\sqrt{9 / (16\\pi)}` (Rappaport, eq. 5.40c): the geometric
    mean of the 50 %-correlation time and 1/f_d.

    Parameters
    ----------
    doppler_hz : array_like
        Doppler shift(s) f_d in Hz, >= 0.

    Returns
    -------
    numpy.ndarray or numpy.float64
        Coherence time in s; ``inf`` where f_d = 0 (a static device).
    """
    fd_hz = _check.non_negative("doppler_hz", doppler_hz)
    with np.errstate(divide="ignore"):
        return 0.423 / fd_hz


def gauss_markov_rho(doppler_hz: ArrayLike, block_s: ArrayLike) -> np.ndarray:
    """Block-to-block correlation of the Gauss-Markov model, :math:`\\rho = J_0(2\\pi f_d T)`.

    Parameters
    ----------
    doppler_hz : array_like
        Doppler shift(s) f_d in Hz, >= 0.
    block_s : array_like
        Block length(s) T in s, > 0.

    Returns
    -------
    numpy.ndarray or numpy.float64
        rho in [-0.403, 1]; 1 for a static device. It turns negative past the
        first zero of J0, at :math:`f_d T \\approx 0.383`.

    Notes
    -----
    With blocks as long as Clarke's coherence time, T = 0.423 / f_d, the
    correlation is :math:`J_0(2\\pi \\cdot 0.423) \\approx -0.124` whatever the
    speed: consecutive blocks are almost independent (slightly anti-correlated).
    """
    fd_hz = _check.non_negative("doppler_hz", doppler_hz)
    t_s = _check.positive("block_s", block_s)
    return scipy.special.j0(2.0 * np.pi * fd_hz * t_s)
