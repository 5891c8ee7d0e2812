"""Energy of computing and of transmitting, the models of the wireless federated-learning literature.

Compute, either a fixed energy per FLOP,

.. math:: E = F\\, e_\\mathrm{FLOP},

or the CMOS dynamic-power model (Burd and Brodersen 1996; used in wireless FL
by e.g. Yang et al., "Energy Efficient Federated Learning Over Wireless
Communication Networks", IEEE TWC 20(3), 2021, with kappa = 1e-28),

.. math:: E = \\kappa\\, C f^2, \\qquad C = F / \\phi,

with C the cycles, f the clock (Hz) and phi the FLOPs per cycle; so the energy per
FLOP is ``kappa f^2 / phi`` (:func:`kappa_j_per_flop`).

Transmission: the radiated power plus an optional circuit power while sending,

.. math:: E = (\\sum_n p_n + P_c)\\, t.

Not modelled: receive energy, idle and sleep power, the power amplifier's
efficiency (fold it into ``P_c`` or the power if needed).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from channel import _check

__all__ = ["compute_energy_j", "kappa_j_per_flop", "transmit_energy_j"]


def compute_energy_j(flops: ArrayLike, j_per_flop: ArrayLike) -> np.ndarray:
    """``F e_FLOP``: energy of ``flops`` FLOPs at ``j_per_flop`` J each, J (broadcast shape)."""
    return _check.non_negative("flops", flops) * _check.non_negative("j_per_flop", j_per_flop)


def kappa_j_per_flop(kappa: ArrayLike, clock_hz: ArrayLike, flops_per_cycle: ArrayLike) -> np.ndarray:
    """Energy per FLOP of the kappa model, ``kappa f^2 / phi``, J.

    At kappa = 1e-28, f = 1.95 GHz, phi = 512 FLOPs per cycle: 7.4e-13 J/FLOP.
    """
    return (_check.non_negative("kappa", kappa) * _check.non_negative("clock_hz", clock_hz) ** 2
            / _check.positive("flops_per_cycle", flops_per_cycle))


def transmit_energy_j(power_w: ArrayLike, duration_s: ArrayLike, circuit_power_w: ArrayLike = 0.0) -> np.ndarray:
    """``(p + P_c) t``: a transmission at total power ``power_w`` for ``duration_s``, J."""
    return ((_check.non_negative("power_w", power_w) + _check.non_negative("circuit_power_w", circuit_power_w))
            * _check.non_negative("duration_s", duration_s))
