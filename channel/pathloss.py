"""Large-scale gain: distance-dependent path loss and log-normal shadowing.

The large-scale gain of client k is

.. math:: \\beta_k = 10^{-(\\mathrm{PL}(d_k) + X_k)/10}, \\qquad
          \\mathrm{PL}(d) = A + B \\log_{10}(d / 1\\,\\mathrm{km}), \\qquad
          X_k \\sim \\mathcal{N}(0, \\sigma^2),

with A = 128.1 dB and B = 37.6 dB per decade for the macro-cell model of
3GPP TR 36.814 (Table A.2.1.1.2-3, 2 GHz) and sigma = 8 dB.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from channel import _check

__all__ = ["pathloss_db", "draw_shadowing_db", "large_scale_gain_lin"]


def pathloss_db(
    distance_m: ArrayLike,
    *,
    intercept_db: float = 128.1,
    slope_db: float = 37.6,
) -> np.ndarray:
    """Log-distance path loss, :math:`\\mathrm{PL} = A + B \\log_{10}(d[\\mathrm{km}])`.

    Parameters
    ----------
    distance_m : array_like
        Distance(s) from the base station in m, > 0.
    intercept_db : float
        A, the loss at 1 km in dB (3GPP TR 36.814 macro: 128.1 dB).
    slope_db : float
        B, dB per decade of distance (3GPP TR 36.814 macro: 37.6 dB).

    Returns
    -------
    numpy.ndarray or numpy.float64
        Path loss in dB (a positive number is a loss), same shape as ``distance_m``.
    """
    d_m = _check.positive("distance_m", distance_m)
    return intercept_db + slope_db * np.log10(d_m / 1000.0)


def draw_shadowing_db(
    rng: np.random.Generator,
    shape: int | tuple[int, ...],
    *,
    std_db: float,
) -> np.ndarray:
    """Draw log-normal shadowing, :math:`X \\sim \\mathcal{N}(0, \\sigma^2)` in dB.

    Always draws ``prod(shape)`` standard normals and scales them by
    ``std_db``, so ``std_db = 0`` gives exact zeros *and consumes the same
    draws* as any other value: changing sigma in a scenario leaves every
    later draw of ``rng`` unchanged.

    Parameters
    ----------
    rng : numpy.random.Generator
        The random stream of the large-scale channel.
    shape : int or tuple of int
        Shape of the output, e.g. ``(n_clients,)``.
    std_db : float
        Standard deviation sigma in dB, >= 0 (3GPP TR 36.814 macro: 8 dB).

    Returns
    -------
    numpy.ndarray
        Shadowing in dB, shape ``shape`` (added to the path loss: > 0 is extra loss).
    """
    sigma_db = float(_check.non_negative("std_db", std_db))
    return sigma_db * rng.standard_normal(shape)


def large_scale_gain_lin(pathloss_db: ArrayLike, shadowing_db: ArrayLike) -> np.ndarray:
    """Large-scale power gain, :math:`\\beta = 10^{-(\\mathrm{PL} + X)/10}`.

    Parameters
    ----------
    pathloss_db : array_like
        Path loss PL in dB (positive is a loss).
    shadowing_db : array_like
        Shadowing X in dB, broadcastable against ``pathloss_db``.

    Returns
    -------
    numpy.ndarray or numpy.float64
        Linear power gain beta (< 1 for a loss), the broadcast shape.
    """
    loss_db = np.asarray(pathloss_db, dtype=float) + np.asarray(shadowing_db, dtype=float)
    return np.power(10.0, -loss_db / 10.0)
