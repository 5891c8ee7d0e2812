"""Conversions between decibels and linear quantities.

Every radio quantity in this package carries its unit in its name
(``_db``, ``_dbm``, ``_lin``, ``_w``); these four functions are the only
places where one is turned into another.

All functions accept a scalar or an array and return the same shape
(a NumPy scalar for a scalar input).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["db_to_lin", "lin_to_db", "dbm_to_watt", "watt_to_dbm"]


def db_to_lin(x_db: ArrayLike) -> np.ndarray:
    """Convert decibels to a linear ratio, :math:`x = 10^{x_\\mathrm{dB}/10}`.

    Parameters
    ----------
    x_db : array_like
        Value(s) in dB.

    Returns
    -------
    numpy.ndarray or numpy.float64
        Linear ratio(s), same shape as ``x_db``.
    """
    return np.power(10.0, np.asarray(x_db, dtype=float) / 10.0)


def lin_to_db(x_lin: ArrayLike) -> np.ndarray:
    """Convert a linear ratio to decibels, :math:`x_\\mathrm{dB} = 10 \\log_{10} x`.

    Parameters
    ----------
    x_lin : array_like
        Non-negative linear ratio(s); 0 maps to ``-inf``.

    Returns
    -------
    numpy.ndarray or numpy.float64
        Value(s) in dB, same shape as ``x_lin``.

    Raises
    ------
    ValueError
        If any entry is negative or NaN.
    """
    x = np.asarray(x_lin, dtype=float)
    if not np.all(x >= 0.0):
        raise ValueError(f"x_lin(={x_lin!r}) must be >= 0")
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(x)


def dbm_to_watt(x_dbm: ArrayLike) -> np.ndarray:
    """Convert dBm to watts, :math:`P_\\mathrm{W} = 10^{(P_\\mathrm{dBm} - 30)/10}`.

    Parameters
    ----------
    x_dbm : array_like
        Power(s) in dBm (dB relative to 1 mW).

    Returns
    -------
    numpy.ndarray or numpy.float64
        Power(s) in W, same shape as ``x_dbm``. For example 23 dBm is 0.1995 W.
    """
    return db_to_lin(np.asarray(x_dbm, dtype=float) - 30.0)


def watt_to_dbm(x_w: ArrayLike) -> np.ndarray:
    """Convert watts to dBm, :math:`P_\\mathrm{dBm} = 10 \\log_{10} P_\\mathrm{W} + 30`.

    Parameters
    ----------
    x_w : array_like
        Non-negative power(s) in W; 0 W maps to ``-inf`` dBm.

    Returns
    -------
    numpy.ndarray or numpy.float64
        Power(s) in dBm, same shape as ``x_w``.

    Raises
    ------
    ValueError
        If any entry is negative or NaN.
    """
    x = np.asarray(x_w, dtype=float)
    if not np.all(x >= 0.0):
        raise ValueError(f"x_w(={x_w!r}) must be >= 0")
    return lin_to_db(x) + 30.0
