"""3GPP TR 38.901 path loss, LoS probability and shadowing: UMa and UMi street canyon.

Path loss, TR 38.901 (v16/v17) Table 7.4.1-1, with d in m and f_c in GHz
(the carrier is given here in Hz and converted), outdoor devices only:

UMa (base station at 25 m)::

    PL1 = 28.0 + 22 log10(d3D) + 20 log10(fc)                       10 m <= d2D <= d'BP
    PL2 = 28.0 + 40 log10(d3D) + 20 log10(fc)
          - 9 log10(d'BP^2 + (hBS - hUT)^2)                         d'BP <= d2D <= 5 km
    PL'NLOS = 13.54 + 39.08 log10(d3D) + 20 log10(fc) - 0.6 (hUT - 1.5)
    PL_NLOS = max(PL_LOS, PL'NLOS)

UMi street canyon (base station at 10 m)::

    PL1 = 32.4 + 21 log10(d3D) + 20 log10(fc)
    PL2 = 32.4 + 40 log10(d3D) + 20 log10(fc) - 9.5 log10(d'BP^2 + (hBS - hUT)^2)
    PL'NLOS = 22.4 + 35.3 log10(d3D) + 21.3 log10(fc) - 0.3 (hUT - 1.5)
    PL_NLOS = max(PL_LOS, PL'NLOS)

with the breakpoint distance ``d'BP = 4 h'BS h'UT fc / c`` (fc in Hz, c = 3.0e8 m/s
as the table's note 1 says), effective heights ``h' = h - hE`` and ``hE = 1 m``.
(UMa draws ``hE`` at random for devices at 13 m and above; those heights are
refused here, see :data:`UT_HEIGHT_RANGE_M`.)

LoS probability, Table 7.4.2-1 (outdoor devices, hUT <= 13 m for UMa)::

    UMi: 1 if d2D <= 18 m, else 18/d2D + exp(-d2D/36) (1 - 18/d2D)
    UMa: 1 if d2D <= 18 m, else 18/d2D + exp(-d2D/63) (1 - 18/d2D)

Shadow fading standard deviation (Table 7.4.1-1): UMa 4 dB LoS / 6 dB NLoS,
UMi 4 dB / 7.82 dB. Decorrelation distances of the shadowing (Table 7.5-6,
"correlation distance in the horizontal plane"): UMa 37 m LoS / 50 m NLoS, UMi
10 m / 13 m; of the LoS state (Table 7.6.3.1-2): 50 m for both.

Validity ranges checked by :func:`validity_problems`: 0.5 GHz <= fc <= 100 GHz,
10 m <= d2D <= 5 km, 1.5 m <= hUT <= 22.5 m (UMi) or < 13 m (UMa), hUT < hBS.
The table fixes hBS (25 m UMa, 10 m UMi); another height is accepted as the
formula's parameter, an extrapolation beyond the model's calibration.

Not modelled: outdoor-to-indoor penetration, the optional simplified NLoS
formulas, RMa and InH, blockage, the O2I car penetration loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from channel import _check

__all__ = [
    "SCENARIOS",
    "Tr38901Params",
    "params",
    "breakpoint_distance_m",
    "los_probability",
    "pathloss_los_db",
    "pathloss_nlos_db",
    "pathloss_38901_db",
    "shadowing_std_38901_db",
    "validity_problems",
]

#: Propagation speed in the breakpoint formula, m/s (TR 38.901 Table 7.4.1-1 note 1: 3.0e8).
C_BREAKPOINT_MPS = 3.0e8
#: Effective environment height hE, m (UMi always; UMa for hUT < 13 m).
ENV_HEIGHT_M = 1.0

SCENARIOS = ("uma", "umi")


@dataclass(frozen=True)
class Tr38901Params:
    """The constants of one TR 38.901 scenario (see the module docstring for sources)."""

    name: str
    bs_height_m: float                     # the table's base-station height
    ut_height_range_m: tuple[float, float]  # [low, high] or [low, high) for UMa (see ut_height_open)
    ut_height_open: bool                   # True: the upper bound is excluded
    distance_2d_range_m: tuple[float, float]
    carrier_range_hz: tuple[float, float]
    shadowing_std_los_db: float
    shadowing_std_nlos_db: float
    shadowing_decorrelation_los_m: float
    shadowing_decorrelation_nlos_m: float
    los_decorrelation_m: float
    los_scale_m: float                     # 63 m (UMa) or 36 m (UMi) in the LoS probability


_PARAMS = {
    "uma": Tr38901Params("uma", 25.0, (1.5, 13.0), True, (10.0, 5000.0), (0.5e9, 100e9),
                         4.0, 6.0, 37.0, 50.0, 50.0, 63.0),
    "umi": Tr38901Params("umi", 10.0, (1.5, 22.5), False, (10.0, 5000.0), (0.5e9, 100e9),
                         4.0, 7.82, 10.0, 13.0, 50.0, 36.0),
}


def params(scenario: str) -> Tr38901Params:
    """The constants of ``scenario`` (``"uma"`` or ``"umi"``)."""
    try:
        return _PARAMS[scenario]
    except KeyError:
        raise ValueError(f"scenario(={scenario!r}) must be one of {', '.join(SCENARIOS)}") from None


def breakpoint_distance_m(bs_height_m: float, ut_height_m: float, carrier_hz: float) -> float:
    """Breakpoint distance ``d'BP = 4 (hBS - hE)(hUT - hE) fc / c`` in m (hE = 1 m, c = 3e8 m/s).

    At 3.5 GHz, hBS = 25 m, hUT = 1.5 m: 4 x 24 x 0.5 x 3.5e9 / 3e8 = 560 m.
    """
    h_bs = float(_check.positive("bs_height_m", bs_height_m)) - ENV_HEIGHT_M
    h_ut = float(_check.positive("ut_height_m", ut_height_m)) - ENV_HEIGHT_M
    fc = float(_check.positive("carrier_hz", carrier_hz))
    return 4.0 * h_bs * h_ut * fc / C_BREAKPOINT_MPS


def los_probability(scenario: str, distance_2d_m: ArrayLike) -> np.ndarray:
    """Probability that a device at ``distance_2d_m`` (m, > 0) is in line of sight (Table 7.4.2-1).

    UMa at 50 / 100 / 200 / 500 m: 0.6494 / 0.3477 / 0.1280 / 0.0363 (hUT <= 13 m).
    """
    p = params(scenario)
    d = _check.positive("distance_2d_m", distance_2d_m)
    far = 18.0 / d + np.exp(-d / p.los_scale_m) * (1.0 - 18.0 / d)
    return np.where(d <= 18.0, 1.0, far)


def _geometry(distance_2d_m, bs_height_m, ut_height_m):
    d2 = _check.positive("distance_2d_m", distance_2d_m)
    h_bs = float(_check.positive("bs_height_m", bs_height_m))
    h_ut = float(_check.positive("ut_height_m", ut_height_m))
    return d2, h_bs, h_ut, np.sqrt(d2**2 + (h_bs - h_ut) ** 2)


def pathloss_los_db(scenario: str, distance_2d_m: ArrayLike, *, carrier_hz: float, bs_height_m: float,
                    ut_height_m: float) -> np.ndarray:
    """LoS path loss in dB (PL1 before the breakpoint, PL2 after; module docstring).

    Parameters
    ----------
    scenario : {"uma", "umi"}
    distance_2d_m : array_like
        Horizontal distance d2D between base station and device, m.
    carrier_hz : float
        Carrier frequency fc, Hz.
    bs_height_m, ut_height_m : float
        Antenna heights hBS, hUT, m.
    """
    params(scenario)
    d2, h_bs, h_ut, d3 = _geometry(distance_2d_m, bs_height_m, ut_height_m)
    fc_ghz = float(_check.positive("carrier_hz", carrier_hz)) / 1e9
    d_bp = breakpoint_distance_m(h_bs, h_ut, carrier_hz)
    a, b, c = (28.0, 22.0, 9.0) if scenario == "uma" else (32.4, 21.0, 9.5)
    pl1 = a + b * np.log10(d3) + 20.0 * np.log10(fc_ghz)
    pl2 = a + 40.0 * np.log10(d3) + 20.0 * np.log10(fc_ghz) - c * np.log10(d_bp**2 + (h_bs - h_ut) ** 2)
    return np.where(d2 <= d_bp, pl1, pl2)


def pathloss_nlos_db(scenario: str, distance_2d_m: ArrayLike, *, carrier_hz: float, bs_height_m: float,
                     ut_height_m: float) -> np.ndarray:
    """NLoS path loss in dB, ``max(PL_LOS, PL'NLOS)`` (module docstring); same parameters as the LoS one."""
    los = pathloss_los_db(scenario, distance_2d_m, carrier_hz=carrier_hz, bs_height_m=bs_height_m,
                          ut_height_m=ut_height_m)
    _, _, h_ut, d3 = _geometry(distance_2d_m, bs_height_m, ut_height_m)
    fc_ghz = float(carrier_hz) / 1e9
    if scenario == "uma":
        nlos = 13.54 + 39.08 * np.log10(d3) + 20.0 * np.log10(fc_ghz) - 0.6 * (h_ut - 1.5)
    else:
        nlos = 22.4 + 35.3 * np.log10(d3) + 21.3 * np.log10(fc_ghz) - 0.3 * (h_ut - 1.5)
    return np.maximum(los, nlos)


def pathloss_38901_db(scenario: str, distance_2d_m: ArrayLike, los: ArrayLike, *, carrier_hz: float,
                      bs_height_m: float, ut_height_m: float) -> np.ndarray:
    """Path loss in dB of devices in LoS (``los`` True) or not, broadcast against ``distance_2d_m``."""
    kw = dict(carrier_hz=carrier_hz, bs_height_m=bs_height_m, ut_height_m=ut_height_m)
    return np.where(np.asarray(los, dtype=bool), pathloss_los_db(scenario, distance_2d_m, **kw),
                    pathloss_nlos_db(scenario, distance_2d_m, **kw))


def shadowing_std_38901_db(scenario: str, los: ArrayLike) -> np.ndarray:
    """Shadow-fading standard deviation in dB by LoS state (UMa 4 / 6 dB, UMi 4 / 7.82 dB)."""
    p = params(scenario)
    return np.where(np.asarray(los, dtype=bool), p.shadowing_std_los_db, p.shadowing_std_nlos_db)


def validity_problems(scenario: str, *, carrier_hz: float, bs_height_m: float, ut_height_m: float,
                      min_distance_2d_m: float, max_distance_2d_m: float) -> list[tuple[str, str]]:
    """Where the settings leave the model's validity range, as ``(setting, message)`` pairs.

    ``setting`` is one of ``carrier_hz``, ``bs_height_m``, ``ut_height_m``,
    ``min_distance_2d_m``, ``max_distance_2d_m``, so the scenario loader can name its key.
    """
    p = params(scenario)
    out = []
    lo, hi = p.carrier_range_hz
    if not lo <= carrier_hz <= hi:
        out.append(("carrier_hz", f"expected {lo / 1e9:g} to {hi / 1e9:g} GHz for TR 38.901 {scenario} "
                                  f"(got {carrier_hz:g} Hz)"))
    lo, hi = p.ut_height_range_m
    above = ut_height_m >= hi if p.ut_height_open else ut_height_m > hi
    if ut_height_m < lo or above:
        upper = f"below {hi:g}" if p.ut_height_open else f"at most {hi:g}"
        why = " (hE is random from 13 m, not modelled)" if p.ut_height_open else ""
        out.append(("ut_height_m", f"expected at least {lo:g} m and {upper} m for TR 38.901 {scenario}{why} "
                                   f"(got {ut_height_m:g})"))
    if bs_height_m <= max(ut_height_m, ENV_HEIGHT_M):
        out.append(("bs_height_m", f"expected above the device height {ut_height_m:g} m and hE = 1 m "
                                   f"(got {bs_height_m:g})"))
    lo, hi = p.distance_2d_range_m
    if min_distance_2d_m < lo:
        out.append(("min_distance_2d_m", f"expected at least {lo:g} m for TR 38.901 {scenario} "
                                         f"(got {min_distance_2d_m:g})"))
    if max_distance_2d_m > hi:
        out.append(("max_distance_2d_m", f"expected at most {hi:g} m for TR 38.901 {scenario} "
                                         f"(got {max_distance_2d_m:g})"))
    return out
