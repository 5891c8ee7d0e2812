"""A saturating exponential fitted to a short learning curve, with its asymptote kept physical.

    y(t) = c + a exp(-b t),    b > 0,

``a > 0`` for a falling loss, ``a < 0`` for a rising accuracy. For a fixed rate
``b`` the best ``(c, a)`` is a linear least-squares problem; ``b`` is found by a
grid over ``log b`` refined with Brent's method, so noise-free exponential data
are fitted exactly (up to floating point).

The asymptote ``c`` is where the curve levels off: a loss (cross-entropy) cannot
go below 0, an accuracy not outside [0, 1]. A few nearly straight points can
be fitted best by an asymptote far outside (a loss floor of -643 nats on three
rounds of a tiny model): such a fit extrapolates nonsense. With bounds given,
``c`` is held at the violated bound and ``a`` refitted for it (the least-squares
solution under the bound, for each ``b``); the fit says so (:attr:`ExpFit.held`)
and keeps the free fit's ``c`` for the record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from .errors import CosimError

_LOG_B_RANGE = (math.log(1e-4), math.log(1e2))  # fitted rate per round


@dataclass(frozen=True)
class ExpFit:
    """``y(t) = c + a exp(-b t)``, t in rounds.

    ``held``: ``"floor"`` or ``"ceiling"`` when ``c`` sits at a bound the free
    fit violated (then ``free_c`` is the free fit's asymptote), else None.
    """

    a: float
    b: float
    c: float
    held: str | None = None
    free_c: float | None = None

    def __call__(self, t):
        return self.c + self.a * np.exp(-self.b * np.asarray(t, dtype=float))

    def time_to(self, y: float, *, falling: bool) -> float:
        """Rounds until the curve reaches ``y``: falls to it (``falling``) or rises to it.

        0 if it starts there, ``inf`` if it never gets there (it levels off at ``c`` first).
        """
        def reached(v):
            return v <= y if falling else v >= y

        if reached(self.c + self.a):
            return 0.0
        if not reached(self.c) or self.c == y:
            return math.inf
        return -math.log((y - self.c) / self.a) / self.b

    def note(self) -> str:
        """Empty, or what the bound did: ``"floor held at 0 (free fit c = -643)"``."""
        if self.held is None:
            return ""
        return f"{self.held} held at {self.c:g} (free fit c = {self.free_c:.4g})"


def fit_exponential(t, y, *, floor: float | None = None, ceiling: float | None = None) -> ExpFit:
    """Least-squares fit of ``c + a exp(-b t)`` to at least three points, with ``floor <= c <= ceiling``."""
    t, y = np.asarray(t, dtype=float), np.asarray(y, dtype=float)
    if t.shape != y.shape or t.size < 3 or not np.all(np.isfinite(y)):
        raise CosimError(f"convergence fit: expected at least 3 finite points (got {y.tolist()})")

    def linear(log_b: float, bounded: bool) -> tuple[float, float, float, str | None]:
        e = np.exp(-math.exp(log_b) * t)
        (c, a), *_ = np.linalg.lstsq(np.column_stack([np.ones_like(t), e]), y, rcond=None)
        held = None
        if bounded and floor is not None and c < floor:
            c, held = floor, "floor"
        elif bounded and ceiling is not None and c > ceiling:
            c, held = ceiling, "ceiling"
        if held is not None:                         # best a for the held c: a one-parameter least squares
            a = float(e @ (y - c) / (e @ e))
        return float(np.sum((c + a * e - y) ** 2)), float(c), float(a), held

    def best(bounded: bool) -> float:
        grid = np.linspace(*_LOG_B_RANGE, 121)
        sse = [linear(g, bounded)[0] for g in grid]
        i = int(np.argmin(sse))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        res = minimize_scalar(lambda g: linear(g, bounded)[0], bounds=(lo, hi), method="bounded",
                              options={"xatol": 1e-12})
        return res.x if res.fun <= sse[i] else grid[i]

    log_b = best(False)
    _, c, a, _ = linear(log_b, False)
    if (floor is None or c >= floor) and (ceiling is None or c <= ceiling):
        return ExpFit(a=a, b=math.exp(log_b), c=c)
    free_c = c
    log_b = best(True)
    _, c, a, held = linear(log_b, True)
    return ExpFit(a=a, b=math.exp(log_b), c=c, held=held, free_c=free_c)
