"""Where a device is over time: static, constant velocity, or random waypoint, in a circular cell.

A trajectory is piecewise linear: waypoints ``p_0, p_1, ...`` (m, base station at
the origin) reached at times ``t_0 = 0 < t_1 < ...`` at the device's constant
speed v. Segments are added lazily as later times are asked for, drawn from the
device's own random stream, so the position at time t never depends on which
times were asked for before.

- :class:`ConstantVelocity`: a straight line in a random direction; at the cell
  edge (radius R) the device is reflected specularly (``v' = v - 2 (v . n) n``
  with n the outward normal), so it stays in the cell.
- :class:`RandomWaypoint`: the random waypoint model (Johnson and Maltz 1996;
  Camp, Boleng and Davies 2002) without pause time: the next waypoint is drawn
  uniformly over the area of the annulus ``r0 <= r <= R``, and the device walks
  to it in a straight line at speed v.

The speed is constant, so the Doppler shift ``f_d = v f_c / c`` is too.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from channel import _check

__all__ = ["Trajectory", "Static", "ConstantVelocity", "RandomWaypoint", "start_position_m"]


def start_position_m(distance_m: float, azimuth_rad: float) -> np.ndarray:
    """Position (x, y) in m of a device at ``distance_m`` from the base station at angle ``azimuth_rad``."""
    return np.array([distance_m * math.cos(azimuth_rad), distance_m * math.sin(azimuth_rad)])


class Trajectory:
    """Piecewise-linear path; subclasses add waypoints with :meth:`_next_waypoint`."""

    def __init__(self, start_m: ArrayLike, speed_mps: float, *, start_distance_m: float | None = None):
        start = np.asarray(start_m, dtype=float)
        if start.shape != (2,) or not np.all(np.isfinite(start)):
            raise ValueError(f"start_m(={start_m!r}) must be a finite (x, y) pair")
        self.speed_mps = float(_check.non_negative("speed_mps", speed_mps))
        self._points = [start]
        self._times = [0.0]
        # The distance as given (|start| may differ from it in the last bit).
        self._start_distance_m = float(np.hypot(*start)) if start_distance_m is None else float(start_distance_m)

    @property
    def is_static(self) -> bool:
        """True if the device never moves."""
        return self.speed_mps == 0.0

    def _next_waypoint(self, position: np.ndarray) -> np.ndarray:  # pragma: no cover - subclasses
        raise NotImplementedError

    def _extend_to(self, t_s: float) -> None:
        while self._times[-1] < t_s:
            here = self._points[-1]
            nxt = self._next_waypoint(here)
            step = float(np.hypot(*(nxt - here)))
            if step <= 0.0:
                raise RuntimeError("a trajectory segment has zero length")
            self._points.append(nxt)
            self._times.append(self._times[-1] + step / self.speed_mps)

    def positions_m(self, t_s: ArrayLike) -> np.ndarray:
        """Positions at times ``t_s`` (s, >= 0, any shape ``S``), shape ``S + (2,)``, m."""
        t = _check.non_negative("t_s", t_s)
        if self.is_static or t.size == 0:
            return np.broadcast_to(self._points[0], t.shape + (2,)).copy()
        self._extend_to(float(t.max()))
        times = np.asarray(self._times)
        points = np.asarray(self._points)
        seg = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
        frac = (t - times[seg]) / (times[seg + 1] - times[seg])
        return points[seg] + frac[..., None] * (points[seg + 1] - points[seg])

    def distances_m(self, t_s: ArrayLike) -> np.ndarray:
        """Horizontal distance to the base station at times ``t_s``, m, shape of ``t_s``."""
        if self.is_static:
            return np.full(np.shape(t_s), self._start_distance_m)
        p = self.positions_m(t_s)
        return np.hypot(p[..., 0], p[..., 1])


class Static(Trajectory):
    """A device that stays where it was dropped (at ``distance_m`` exactly, when given)."""

    def __init__(self, start_m: ArrayLike, *, distance_m: float | None = None):
        super().__init__(start_m, 0.0, start_distance_m=distance_m)


class ConstantVelocity(Trajectory):
    """Straight line at ``speed_mps`` in direction ``heading_rad``, reflected at the cell edge.

    Parameters
    ----------
    start_m : (2,) array_like
        Start position, m, inside the cell.
    speed_mps : float
        Speed v, m/s.
    heading_rad : float
        Direction of motion (angle from the x axis), rad.
    radius_m : float
        Cell radius R, m.
    """

    def __init__(self, start_m: ArrayLike, speed_mps: float, *, heading_rad: float, radius_m: float):
        super().__init__(start_m, speed_mps)
        self.radius_m = float(_check.positive("radius_m", radius_m))
        if np.hypot(*self._points[0]) > self.radius_m * (1 + 1e-12):
            raise ValueError(f"start_m(={start_m!r}) must lie in the cell of radius {radius_m!r} m")
        self._direction = np.array([math.cos(heading_rad), math.sin(heading_rad)])

    def _next_waypoint(self, position: np.ndarray) -> np.ndarray:
        # Exit point: |p + s u| = R with s > 0 (u the unit direction), then reflect u at the normal there.
        u = self._direction
        b = float(position @ u)
        c = float(position @ position) - self.radius_m**2
        s = -b + math.sqrt(max(b * b - c, 0.0))
        if s <= 1e-9 * self.radius_m:  # on the edge and heading out: reflect first
            n = position / np.hypot(*position)
            self._direction = u - 2.0 * (u @ n) * n
            return self._next_waypoint(position)
        exit_point = position + s * u
        n = exit_point / np.hypot(*exit_point)
        self._direction = u - 2.0 * (u @ n) * n
        # Land exactly on the circle, so the next search starts on it.
        return exit_point * (self.radius_m / np.hypot(*exit_point))


class RandomWaypoint(Trajectory):
    """Random waypoint without pause: straight walks at ``speed_mps`` to points uniform in the annulus.

    Parameters
    ----------
    start_m : (2,) array_like
        Start position, m.
    speed_mps : float
        Speed v, m/s.
    rng : numpy.random.Generator
        This device's mobility stream (two uniforms per waypoint: radius, angle).
    radius_m, min_distance_m : float
        The annulus ``r0 <= r <= R`` the waypoints are drawn in, m.
    """

    def __init__(self, start_m: ArrayLike, speed_mps: float, *, rng: np.random.Generator, radius_m: float,
                 min_distance_m: float):
        super().__init__(start_m, speed_mps)
        self.radius_m = float(_check.positive("radius_m", radius_m))
        self.min_distance_m = float(_check.non_negative("min_distance_m", min_distance_m))
        self._rng = rng

    def _next_waypoint(self, position: np.ndarray) -> np.ndarray:
        while True:
            u_r, u_a = self._rng.random(2)
            r = math.sqrt(self.min_distance_m**2 + u_r * (self.radius_m**2 - self.min_distance_m**2))
            point = start_position_m(r, 2.0 * math.pi * u_a)
            if np.hypot(*(point - position)) > 0.0:
                return point
