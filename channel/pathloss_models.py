"""The path-loss laws a scenario can choose, behind one small interface.

Each model maps a horizontal distance d (m) and a line-of-sight state to a path
loss in dB, gives the probability of line of sight at d, the standard deviation
of the log-normal shadowing per state, and the decorrelation distances of the
shadowing and of the LoS state (used when devices move, and for shadowing
correlated between devices).

- :class:`LogDistance`: ``PL = A + B log10(d / 1 km)`` (3GPP TR 36.814 macro:
  A = 128.1 dB, B = 37.6 dB, sigma = 8 dB); no LoS state. Its decorrelation
  distance defaults to 50 m, the value 3GPP TR 36.814 Table A.2.1.1.2-3 gives
  for the macro cell's shadowing.
- :class:`Tr38901`: UMa or UMi street canyon of :mod:`channel.tr38901`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from channel import tr38901

__all__ = ["PathlossModel", "LogDistance", "Tr38901"]


class PathlossModel:
    """Interface: path loss, LoS probability and shadowing statistics of one law."""

    #: Whether the law distinguishes LoS from NLoS (draws a LoS state per device).
    has_los_state = False

    def pathloss_db(self, distance_2d_m: ArrayLike, los: ArrayLike) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def los_probability(self, distance_2d_m: ArrayLike) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def shadowing_std_db(self, los: ArrayLike) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def shadowing_decorrelation_m(self, los: ArrayLike) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    #: Decorrelation distance of the LoS state along a device's path, m.
    los_decorrelation_m = 50.0


@dataclass(frozen=True)
class LogDistance(PathlossModel):
    """``PL = intercept_db + slope_db log10(d / 1 km)``, shadowing ``std_db``, never LoS.

    Parameters
    ----------
    intercept_db, slope_db : float
        A (loss at 1 km, dB) and B (dB per decade); TR 36.814 macro: 128.1, 37.6.
    std_db : float
        Shadowing standard deviation, dB (TR 36.814 macro: 8).
    decorrelation_m : float
        Shadowing decorrelation distance, m (TR 36.814 macro: 50).
    """

    intercept_db: float = 128.1
    slope_db: float = 37.6
    std_db: float = 8.0
    decorrelation_m: float = 50.0

    def pathloss_db(self, distance_2d_m, los=False):
        d = np.asarray(distance_2d_m, dtype=float)
        return self.intercept_db + self.slope_db * np.log10(d / 1000.0)

    def los_probability(self, distance_2d_m):
        return np.zeros(np.shape(distance_2d_m))

    def shadowing_std_db(self, los=False):
        return np.full(np.shape(los), self.std_db)

    def shadowing_decorrelation_m(self, los=False):
        return np.full(np.shape(los), self.decorrelation_m)


@dataclass(frozen=True)
class Tr38901(PathlossModel):
    """TR 38.901 UMa or UMi street canyon (:mod:`channel.tr38901`).

    Parameters
    ----------
    scenario : {"uma", "umi"}
    carrier_hz, bs_height_m, ut_height_m : float
        fc (Hz), hBS and hUT (m).
    std_los_db, std_nlos_db : float, optional
        Shadowing standard deviations; None: the table's (UMa 4 / 6 dB, UMi 4 / 7.82 dB).
    decorrelation_m : float, optional
        One shadowing decorrelation distance for both states; None: Table 7.5-6
        (UMa 37 / 50 m, UMi 10 / 13 m).
    """

    scenario: str = "uma"
    carrier_hz: float = 3.5e9
    bs_height_m: float = 25.0
    ut_height_m: float = 1.5
    std_los_db: float | None = None
    std_nlos_db: float | None = None
    decorrelation_m: float | None = None

    has_los_state = True

    def __post_init__(self):
        tr38901.params(self.scenario)

    @property
    def los_decorrelation_m(self) -> float:
        return tr38901.params(self.scenario).los_decorrelation_m

    def pathloss_db(self, distance_2d_m, los):
        return tr38901.pathloss_38901_db(self.scenario, distance_2d_m, los, carrier_hz=self.carrier_hz,
                                         bs_height_m=self.bs_height_m, ut_height_m=self.ut_height_m)

    def los_probability(self, distance_2d_m):
        return tr38901.los_probability(self.scenario, distance_2d_m)

    def shadowing_std_db(self, los):
        p = tr38901.params(self.scenario)
        std_los = p.shadowing_std_los_db if self.std_los_db is None else self.std_los_db
        std_nlos = p.shadowing_std_nlos_db if self.std_nlos_db is None else self.std_nlos_db
        return np.where(np.asarray(los, dtype=bool), std_los, std_nlos)

    def shadowing_decorrelation_m(self, los):
        p = tr38901.params(self.scenario)
        if self.decorrelation_m is not None:
            return np.full(np.shape(los), float(self.decorrelation_m))
        return np.where(np.asarray(los, dtype=bool), p.shadowing_decorrelation_los_m,
                        p.shadowing_decorrelation_nlos_m)
