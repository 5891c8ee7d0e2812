"""rounds(rank) from measured convergence: pilot curves, an exponential fit, rounds-to-target.

``cosim profile --pilot-rounds R`` stores, for each pilot rank, the held-out
loss and accuracy after every round of a short real training run (index 0:
before training). Each curve is fitted by

    y(t) = c + a exp(-b t),    b > 0,

(a saturating exponential: ``a > 0`` for a falling loss, ``a < 0`` for a
rising accuracy) by least squares: for a fixed rate ``b`` the best ``(c, a)``
is a linear least-squares problem, and ``b`` is found by a grid over
``log b`` refined with Brent's method, so noise-free exponential data are
fitted exactly (up to floating point).

Rounds to reach the target (:class:`Target`; default: the held-out loss the
best pilot rank reaches at its last pilot round):

- the first pilot round whose *measured* value reaches the target (at least 1);
- else the fit's crossing time, rounded up (a crossing within 1e-6 of a whole
  round, the fit's own precision, counts as that round; never fewer than
  ``R + 1``): an extrapolation, reported as ``"extrapolated"``;
- else (the fitted curve levels off before the target, or the crossing is
  beyond ``max_rounds``, default ``10 R``) ``max_rounds``, reported as ``"capped"``.

A cost-table rank without a pilot curve gets its rounds interpolated
linearly in ``log2(rank)`` between the neighbouring pilot ranks (the nearest
pilot rank outside their range). Without any pilot, every rank needs the
scenario's ``training.rounds`` (the fallback of :func:`cosim.optimize.build_problem`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import minimize_scalar

from .errors import CosimError

METRICS = ("loss", "accuracy")
_LOG_B_RANGE = (math.log(1e-4), math.log(1e2))  # fitted rate per round


@dataclass(frozen=True)
class Target:
    """What "converged" means.

    Attributes
    ----------
    metric : {"loss", "accuracy"}
        Held-out loss to fall to, or held-out accuracy to rise to.
    value : float or None
        The target; None: the best value any pilot rank reaches at its last pilot round.
    max_rounds : int or None
        Cap on the rounds of a rank that does not reach it; None: 10 x the pilot rounds.
    """

    metric: Literal["loss", "accuracy"] = "loss"
    value: float | None = None
    max_rounds: int | None = None

    def __post_init__(self):
        if self.metric not in METRICS:
            raise CosimError(f"target metric: expected one of {', '.join(METRICS)} (got {self.metric!r})")
        if self.max_rounds is not None and self.max_rounds < 1:
            raise CosimError(f"target max_rounds: expected an integer >= 1 (got {self.max_rounds})")

    def to_dict(self) -> dict:
        return {"metric": self.metric, "value": self.value, "max_rounds": self.max_rounds}

    @classmethod
    def from_dict(cls, d: dict | None) -> "Target":
        return cls() if d is None else cls(metric=d.get("metric", "loss"), value=d.get("value"),
                                           max_rounds=d.get("max_rounds"))


@dataclass(frozen=True)
class ExpFit:
    """``y(t) = c + a exp(-b t)``, t in rounds."""

    a: float
    b: float
    c: float

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


def fit_exponential(t, y) -> ExpFit:
    """Least-squares fit of ``c + a exp(-b t)`` to at least three points ``(t, y)``."""
    t, y = np.asarray(t, dtype=float), np.asarray(y, dtype=float)
    if t.shape != y.shape or t.size < 3 or not np.all(np.isfinite(y)):
        raise CosimError(f"convergence fit: expected at least 3 finite points (got {y.tolist()})")

    def linear(log_b: float) -> tuple[float, np.ndarray]:
        basis = np.column_stack([np.ones_like(t), np.exp(-math.exp(log_b) * t)])
        coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
        return float(np.sum((basis @ coef - y) ** 2)), coef

    grid = np.linspace(*_LOG_B_RANGE, 121)
    sse = [linear(g)[0] for g in grid]
    i = int(np.argmin(sse))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    res = minimize_scalar(lambda g: linear(g)[0], bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-12})
    log_b = res.x if res.fun <= sse[i] else grid[i]
    _, (c, a) = linear(log_b)
    return ExpFit(a=float(a), b=math.exp(log_b), c=float(c))


@dataclass(frozen=True)
class RoundsToTarget:
    """Rounds a rank needs, and how that number was obtained (measured, extrapolated or capped)."""

    rounds: int
    how: Literal["measured", "extrapolated", "capped"]


class Convergence:
    """Pilot curves of a profile, their fits, and rounds-to-target per rank.

    Parameters
    ----------
    pilot : dict
        The ``pilot`` section of a profile: ``rounds`` (R), ``ranks``,
        ``eval_loss`` and ``accuracy`` (rank -> R + 1 values), ``target``
        (:meth:`Target.to_dict`, or None for the default).
    """

    def __init__(self, pilot: dict):
        self.rounds = int(pilot["rounds"])
        self.ranks = [int(r) for r in pilot["ranks"]]
        if self.rounds < 2 or not self.ranks:
            raise CosimError(f"pilot: expected at least 2 rounds and one rank (got {self.rounds} rounds, "
                             f"ranks {self.ranks}); use --pilot-rounds 2 or more")
        self.curves = {m: {int(r): np.asarray(pilot[key][str(r)], dtype=float) for r in self.ranks}
                       for m, key in (("loss", "eval_loss"), ("accuracy", "accuracy"))}
        for metric, curves in self.curves.items():
            for rank, y in curves.items():
                if y.shape != (self.rounds + 1,):
                    raise CosimError(f"pilot: {metric} of rank {rank}: expected {self.rounds + 1} values "
                                     f"(got {y.size})")
        self.target = Target.from_dict(pilot.get("target"))
        self.fits = {m: {r: fit_exponential(np.arange(self.rounds + 1), y) for r, y in c.items()}
                     for m, c in self.curves.items()}

    @classmethod
    def from_pilot(cls, pilot: dict) -> "Convergence":
        return cls(pilot)

    @property
    def max_rounds(self) -> int:
        return self.target.max_rounds or 10 * self.rounds

    @property
    def target_value(self) -> float:
        """The target of :attr:`target`'s metric (default: best last-round value over the pilot ranks)."""
        if self.target.value is not None:
            return float(self.target.value)
        last = [y[-1] for y in self.curves[self.target.metric].values()]
        return float(min(last) if self.target.metric == "loss" else max(last))

    def _reached(self, y) -> np.ndarray:
        goal = self.target_value
        return np.asarray(y) <= goal if self.target.metric == "loss" else np.asarray(y) >= goal

    def rounds_to_target(self, rank: int) -> RoundsToTarget:
        """Rounds pilot rank ``rank`` needs to reach the target (see the module docstring)."""
        y = self.curves[self.target.metric][rank]
        hit = np.flatnonzero(self._reached(y))
        if hit.size:
            return RoundsToTarget(max(1, int(hit[0])), "measured")
        t = self.fits[self.target.metric][rank].time_to(self.target_value, falling=self.target.metric == "loss")
        if not math.isfinite(t) or t > self.max_rounds:
            return RoundsToTarget(self.max_rounds, "capped")
        return RoundsToTarget(max(self.rounds + 1, math.ceil(t - 1e-6 * max(1.0, t))), "extrapolated")

    def rounds_for(self, ranks) -> np.ndarray:
        """Rounds-to-target for each of ``ranks`` (float array, for ``solver.Problem.rounds_to_target``)."""
        known = sorted(self.ranks)
        rounds = [self.rounds_to_target(r).rounds for r in known]
        out = []
        for r in np.asarray(ranks, dtype=int):
            if int(r) in self.curves["loss"]:
                out.append(float(self.rounds_to_target(int(r)).rounds))
            else:
                out.append(float(math.ceil(np.interp(math.log2(r), np.log2(known), rounds))))
        return np.array(out)

    def metrics_at(self, rank: int, rounds_done: int) -> tuple[float, float]:
        """(held-out loss, accuracy) of ``rank`` after ``rounds_done`` rounds: measured, or fitted beyond the pilot.

        A rank without a pilot curve takes the nearest pilot rank's (in log2 rank).
        """
        if rank not in self.curves["loss"]:
            rank = min(self.ranks, key=lambda r: (abs(math.log2(r) - math.log2(rank)), r))
        if rounds_done <= self.rounds:
            return float(self.curves["loss"][rank][rounds_done]), float(self.curves["accuracy"][rank][rounds_done])
        loss = float(self.fits["loss"][rank](rounds_done))
        acc = float(np.clip(self.fits["accuracy"][rank](rounds_done), 0.0, 1.0))
        return loss, acc

    def describe(self) -> str:
        """The fitted curves and rounds-to-target, one line per pilot rank."""
        m = self.target.metric
        lines = [f"# convergence: {self.rounds} pilot rounds; target held-out {m} "
                 f"{'<=' if m == 'loss' else '>='} {self.target_value:.4f}"
                 f"{'' if self.target.value is not None else ' (the best rank at its last pilot round)'}; "
                 f"fit {m}(t) = c + a exp(-b t); cap {self.max_rounds} rounds",
                 f"{'rank':>5} {'measured ' + m:>40} {'a':>9} {'b':>8} {'c':>9} {'rounds':>7}  how"]
        for r in sorted(self.ranks):
            f, est = self.fits[m][r], self.rounds_to_target(r)
            measured = " ".join(f"{v:.3f}" for v in self.curves[m][r])
            lines.append(f"{r:>5} {measured:>40} {f.a:>9.4f} {f.b:>8.4f} {f.c:>9.4f} {est.rounds:>7}  {est.how}")
        return "\n".join(lines) + "\n"
