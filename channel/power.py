"""Per-device power limit: spreading it over subchannels and checking a budget.

A client k with maximum transmit power :math:`P_k^\\max` must satisfy

.. math:: p_{k,n} \\ge 0, \\qquad \\sum_n p_{k,n} \\le P_k^\\max .
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from channel import _check
from channel.errors import PowerBudgetError
from channel.units import watt_to_dbm

__all__ = ["equal_power_w", "check_power_budget"]

#: Relative slack of the budget check, so that a budget spread by
#: :func:`equal_power_w` (or by a solver) and summed back in floating point passes.
BUDGET_RTOL = 1e-9


def equal_power_w(max_power_w: float, n_subchannels: int) -> np.ndarray:
    """Spread a device's power limit evenly, :math:`p_n = P^\\max / N`.

    Parameters
    ----------
    max_power_w : float
        Power limit P^max of the device in W, >= 0 (default scenario: 23 dBm = 0.1995 W).
    n_subchannels : int
        Number N >= 0 of subchannels the device holds. With N = 0 the result
        is empty (the device transmits nothing).

    Returns
    -------
    numpy.ndarray
        Power per subchannel in W, shape ``(n_subchannels,)``; sums to
        ``max_power_w`` up to rounding.
    """
    p_max_w = float(_check.non_negative("max_power_w", max_power_w))
    n = _check.count("n_subchannels", n_subchannels)
    if n == 0:
        return np.zeros(0)
    return np.full(n, p_max_w / n)


def check_power_budget(power_w: ArrayLike, max_power_w: float, *, rtol: float = BUDGET_RTOL) -> None:
    """Check that a device's power allocation is feasible.

    Parameters
    ----------
    power_w : array_like
        Power per subchannel in W, shape ``(N,)``.
    max_power_w : float
        The device's power limit P^max in W, >= 0.
    rtol : float
        Relative tolerance: the sum may exceed the budget by ``rtol * max_power_w``.

    Raises
    ------
    PowerBudgetError
        If an entry is negative or not finite, or if
        :math:`\\sum_n p_n > P^\\max (1 + \\mathrm{rtol})`; the message gives the
        sum and the budget in W and dBm.
    """
    p_max_w = float(_check.non_negative("max_power_w", max_power_w))
    p_w = np.asarray(power_w, dtype=float)
    if not np.all(np.isfinite(p_w) & (p_w >= 0.0)):
        raise PowerBudgetError(f"power_w(={p_w.tolist()!r}) must be finite and >= 0 on every subchannel")
    total_w = float(p_w.sum())
    if total_w > p_max_w * (1.0 + rtol):
        raise PowerBudgetError(
            f"power budget exceeded: sum(power_w)(={total_w!r} W, {_dbm(total_w)}) "
            f"must be <= max_power_w(={p_max_w!r} W, {_dbm(p_max_w)})"
        )


def _dbm(x_w: float) -> str:
    return f"{float(watt_to_dbm(x_w)):.2f} dBm"
