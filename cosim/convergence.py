"""rounds(rank) from measured convergence: pilot curves, an exponential fit, rounds-to-target.

``cosim profile --pilot-rounds R`` stores, for each pilot rank, the held-out
loss and accuracy after every round of a short real training run (index 0:
before training). Each curve is fitted by ``y(t) = c + a exp(-b t)``
(:mod:`cosim.curvefit`), with the asymptote kept physical: a loss floor
``c >= 0``, an accuracy ceiling in [0, 1] (a fit that needed more is held at the
bound and flagged).

The target (:class:`Target`) is a held-out loss to fall to (or an accuracy to
rise to) within a tolerance. Default: the loss the best pilot rank reaches at
its last pilot round, with a tolerance of 1% of the drop from that rank's loss
before training to it, so that ranks a thousandth of a nat apart at the end
of the pilot count as equally converged; for an accuracy target, one binomial standard error
``sqrt(p (1 - p) / n)`` at it (``n`` held-out examples). An explicit
``--target-loss`` / ``--target-accuracy`` has no tolerance unless
``--target-tolerance`` gives one. Rounds to reach it, per pilot rank:

- ``measured``: the first pilot round whose measured value is within the target (at least 1);
- ``extrapolated``: else the fit's crossing time, rounded up (a crossing within
  1e-6 of a whole round, the fit's own precision, counts as that round; never
  fewer than ``R + 1``);
- ``capped``: else (the fitted curve levels off before the target, or the
  crossing is beyond ``max_rounds``, default ``10 R``) ``max_rounds``.

A cost-table rank without a pilot curve takes its rounds from the pilot ranks
around it, linearly in ``log2(rank)`` and rounded up (``interpolated``), or the
nearest pilot rank's beyond their range (``nearest``); every printed table says
which. Without any pilot, every rank needs the scenario's ``training.rounds``
(the fallback of :func:`cosim.optimize.build_problem`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .curvefit import ExpFit, fit_exponential
from .errors import CosimError

__all__ = ["Convergence", "ExpFit", "RoundsToTarget", "Target", "fit_exponential"]

METRICS = ("loss", "accuracy")
DEFAULT_LOSS_TOLERANCE = 0.01    # of the best rank's improvement over the pilot


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
    tolerance : float or None
        How close counts as reached, in the metric's units (loss: at most value + tolerance;
        accuracy: at least value - tolerance). None: the default of the module docstring.
    """

    metric: Literal["loss", "accuracy"] = "loss"
    value: float | None = None
    max_rounds: int | None = None
    tolerance: float | None = None

    def __post_init__(self):
        if self.metric not in METRICS:
            raise CosimError(f"target metric: expected one of {', '.join(METRICS)} (got {self.metric!r})")
        if self.max_rounds is not None and self.max_rounds < 1:
            raise CosimError(f"target max_rounds: expected an integer >= 1 (got {self.max_rounds})")
        if self.tolerance is not None and not self.tolerance >= 0:
            raise CosimError(f"target tolerance: expected a value >= 0 (got {self.tolerance})")

    def to_dict(self) -> dict:
        return {"metric": self.metric, "value": self.value, "max_rounds": self.max_rounds,
                "tolerance": self.tolerance}

    @classmethod
    def from_dict(cls, d: dict | None) -> "Target":
        return cls() if d is None else cls(metric=d.get("metric", "loss"), value=d.get("value"),
                                           max_rounds=d.get("max_rounds"), tolerance=d.get("tolerance"))


@dataclass(frozen=True)
class RoundsToTarget:
    """Rounds a rank needs, how that number was obtained, and from what (``detail``, for tables)."""

    rounds: int
    how: Literal["measured", "extrapolated", "capped", "interpolated", "nearest"]
    detail: str = ""


class Convergence:
    """Pilot curves of a profile, their fits, and rounds-to-target per rank.

    Parameters
    ----------
    pilot : dict
        The ``pilot`` section of a profile: ``rounds`` (R), ``ranks``,
        ``eval_loss`` and ``accuracy`` (rank -> R + 1 values), ``target``
        (:meth:`Target.to_dict`, or None for the default), ``test_size``
        (held-out examples, for the accuracy tolerance).
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
        self.test_size = pilot.get("test_size")
        t = np.arange(self.rounds + 1)
        bounds = {"loss": {"floor": 0.0}, "accuracy": {"floor": 0.0, "ceiling": 1.0}}
        self.fits = {m: {r: fit_exponential(t, y, **bounds[m]) for r, y in c.items()} for m, c in self.curves.items()}

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

    @property
    def tolerance(self) -> tuple[float, str]:
        """The tolerance in the metric's units, and where it comes from (for tables)."""
        if self.target.tolerance is not None:
            return float(self.target.tolerance), "--target-tolerance"
        if self.target.value is not None:
            return 0.0, "none for an explicit target"
        goal = self.target_value
        if self.target.metric == "accuracy":
            if not self.test_size:
                return 0.0, "none: the pilot does not say how many held-out examples it had"
            return math.sqrt(goal * (1 - goal) / self.test_size), f"one binomial standard error, n={self.test_size}"
        best = min(self.ranks, key=lambda r: self.curves["loss"][r][-1])
        drop = float(self.curves["loss"][best][0]) - goal
        return DEFAULT_LOSS_TOLERANCE * max(drop, 0.0), f"1% of rank {best}'s drop over the pilot"

    @property
    def threshold(self) -> float:
        """The value that counts as reached: the target loosened by the tolerance."""
        tol = self.tolerance[0]
        return self.target_value + tol if self.target.metric == "loss" else self.target_value - tol

    def _reached(self, y) -> np.ndarray:
        goal = self.threshold
        return np.asarray(y) <= goal if self.target.metric == "loss" else np.asarray(y) >= goal

    def rounds_to_target(self, rank: int) -> RoundsToTarget:
        """Rounds pilot rank ``rank`` needs to reach the target (see the module docstring)."""
        y = self.curves[self.target.metric][rank]
        hit = np.flatnonzero(self._reached(y))
        if hit.size:
            return RoundsToTarget(max(1, int(hit[0])), "measured", f"pilot round {max(1, int(hit[0]))}")
        fit = self.fits[self.target.metric][rank]
        t = fit.time_to(self.threshold, falling=self.target.metric == "loss")
        if not math.isfinite(t) or t > self.max_rounds:
            why = "the fit levels off before the target" if not math.isfinite(t) else f"the fit crosses at {t:.1f}"
            return RoundsToTarget(self.max_rounds, "capped", f"{why}; cap {self.max_rounds}")
        rounds = max(self.rounds + 1, math.ceil(t - 1e-6 * max(1.0, t)))
        return RoundsToTarget(rounds, "extrapolated", f"the fit crosses at {t:.2f}"
                              + (f"; {fit.note()}" if fit.held else ""))

    def rounds_detail(self, ranks) -> list[RoundsToTarget]:
        """rounds(rank) of each of ``ranks`` and where it comes from (pilot ranks, or their neighbours)."""
        known = sorted(self.ranks)
        per = {r: self.rounds_to_target(r) for r in known}
        out = []
        for r in (int(v) for v in np.asarray(ranks, dtype=int)):
            if r in per:
                out.append(per[r])
            elif r < known[0] or r > known[-1]:
                near = known[0] if r < known[0] else known[-1]
                out.append(RoundsToTarget(per[near].rounds, "nearest",
                                          f"no pilot rank {'below' if r < near else 'above'}: rank {near}'s"))
            else:
                lo = max(k for k in known if k < r)
                hi = min(k for k in known if k > r)
                x = (math.log2(r) - math.log2(lo)) / (math.log2(hi) - math.log2(lo))
                value = per[lo].rounds + x * (per[hi].rounds - per[lo].rounds)
                out.append(RoundsToTarget(math.ceil(value - 1e-9), "interpolated",
                                          f"log2-linear between ranks {lo} ({per[lo].rounds}) and {hi} "
                                          f"({per[hi].rounds})"))
        return out

    def rounds_for(self, ranks) -> np.ndarray:
        """Rounds-to-target for each of ``ranks`` (float array, for ``solver.Problem.rounds_to_target``)."""
        return np.array([float(d.rounds) for d in self.rounds_detail(ranks)])

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

    def describe_target(self) -> str:
        """One line: the target, its tolerance and where both come from."""
        m, tol = self.target.metric, self.tolerance
        return (f"target held-out {m} {'<=' if m == 'loss' else '>='} {self.target_value:.4f}"
                f"{'' if self.target.value is not None else ' (the best rank at its last pilot round)'}, "
                f"tolerance {tol[0]:.4f} ({tol[1]}): reached at {m} {'<=' if m == 'loss' else '>='} "
                f"{self.threshold:.4f}")

    def describe(self, ranks=None) -> str:
        """The fitted curves and rounds-to-target, one line per pilot rank, then ``ranks`` not piloted."""
        m = self.target.metric
        lines = [f"# convergence: {self.rounds} pilot rounds; {self.describe_target()}; "
                 f"fit {m}(t) = c + a exp(-b t); cap {self.max_rounds} rounds",
                 f"{'rank':>5} {'measured ' + m:>40} {'a':>9} {'b':>8} {'c':>9} {'rounds':>7}  how"]
        for r in sorted(self.ranks):
            f, est = self.fits[m][r], self.rounds_to_target(r)
            measured = " ".join(f"{v:.3f}" for v in self.curves[m][r])
            lines.append(f"{r:>5} {measured:>40} {f.a:>9.4f} {f.b:>8.4f} {f.c:>9.4f} {est.rounds:>7}  "
                         f"{est.how}: {est.detail}" + (f"; {f.note()}" if f.held and est.how != "extrapolated" else ""))
        others = [int(r) for r in (ranks if ranks is not None else []) if int(r) not in self.ranks]
        for r, est in zip(others, self.rounds_detail(others)):
            lines.append(f"{r:>5} {'(no pilot)':>40} {'':>9} {'':>8} {'':>9} {est.rounds:>7}  {est.how}: {est.detail}")
        return "\n".join(lines) + "\n"
