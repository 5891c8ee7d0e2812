"""When each device is online: always, an on/off process, or intervals read from a file.

A device's online time is a union of half-open intervals ``[start_s, end_s)``.
A chain of work of a device is cut when the device goes offline
(:meth:`cosim.steps.TimedSteps.client_process`), and a device takes part in a
round only if it is online when the round starts.

- ``always``: online from 0 on.
- ``on_off``: alternating online and offline periods with exponential lengths
  (means ``mean_on_s`` and ``mean_off_s``), drawn lazily from each device's own
  stream, so adding a device changes no other device's periods. The first
  period is online (``start: online``), or online with the stationary
  probability ``mean_on / (mean_on + mean_off)`` (``start: stationary``).
- ``file``: a CSV with columns ``client,start_s,end_s``, one row per online
  interval; a device with no row is never online.
"""

from __future__ import annotations

import bisect
import csv
import math
from pathlib import Path

import numpy as np

from .errors import ScenarioError

INF = math.inf


class Availability:
    """Each device's online intervals, extended on demand for a random process.

    Parameters
    ----------
    intervals : list of list of (float, float)
        Per device, sorted disjoint online intervals (a random process appends to them).
    draw : callable(k, intervals) or None
        Extends device ``k``'s intervals by one online period (``on_off``).
    """

    def __init__(self, intervals: list[list[tuple[float, float]]], draw=None):
        self.intervals = intervals
        self._draw = draw

    @classmethod
    def always(cls, n_clients: int) -> "Availability":
        return cls([[(0.0, INF)] for _ in range(n_clients)])

    @classmethod
    def on_off(cls, n_clients: int, *, mean_on_s: float, mean_off_s: float, start: str,
               rngs: list[np.random.Generator]) -> "Availability":
        """Exponential on and off periods, each device on its own generator ``rngs[k]``."""
        p_on = mean_on_s / (mean_on_s + mean_off_s)
        first = []
        for k in range(n_clients):
            t = 0.0
            if start == "stationary" and rngs[k].random() >= p_on:
                t = float(rngs[k].exponential(mean_off_s))  # starts offline, for one off period
            first.append([(t, t + float(rngs[k].exponential(mean_on_s)))])

        def draw(k: int, intervals: list) -> None:
            end = intervals[-1][1]
            start_s = end + float(rngs[k].exponential(mean_off_s))
            intervals.append((start_s, start_s + float(rngs[k].exponential(mean_on_s))))

        return cls(first, draw)

    # -- queries -------------------------------------------------------------------------------

    def _cover(self, k: int, t_s: float) -> list[tuple[float, float]]:
        """Device ``k``'s intervals, drawn at least past ``t_s``."""
        iv = self.intervals[k]
        while self._draw is not None and iv[-1][1] <= t_s:
            self._draw(k, iv)
        return iv

    def _find(self, k: int, t_s: float) -> tuple[int, list]:
        iv = self._cover(k, t_s)
        return bisect.bisect_right(iv, (t_s, INF)) - 1, iv

    def is_online(self, k: int, t_s: float) -> bool:
        i, iv = self._find(k, t_s)
        return i >= 0 and iv[i][0] <= t_s < iv[i][1]

    def offline_at(self, k: int, t_s: float) -> float:
        """When device ``k``, online at ``t_s``, goes offline (``inf``: never); ``t_s`` if it is offline."""
        i, iv = self._find(k, t_s)
        if i >= 0 and iv[i][0] <= t_s < iv[i][1]:
            return iv[i][1]
        return t_s

    def online_at(self, k: int, t_s: float) -> float:
        """The first time at or after ``t_s`` when device ``k`` is online (``inf``: never again)."""
        i, iv = self._find(k, t_s)
        if i >= 0 and iv[i][0] <= t_s < iv[i][1]:
            return t_s
        if i + 1 < len(iv):
            return iv[i + 1][0]
        return INF

    def online_intervals(self, k: int, until_s: float) -> list[tuple[float, float]]:
        """Device ``k``'s online intervals that start before ``until_s``."""
        return [(a, b) for a, b in self._cover(k, until_s) if a < until_s]


def read_availability_file(path: str | Path, n_clients: int, *, key: str = "availability.file") -> list[list]:
    """Online intervals per device from a CSV ``client,start_s,end_s``; every problem named with its line."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ScenarioError([f"{key}: {path}: no such file"]) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ScenarioError([f"{key}: {path}: cannot read ({exc.__class__.__name__})"]) from None
    rows = list(csv.reader(text.splitlines()))
    if not rows or [c.strip() for c in rows[0]] != ["client", "start_s", "end_s"]:
        raise ScenarioError([f"{key}: {path}: line 1: expected the header client,start_s,end_s "
                             f"(got {','.join(rows[0]) if rows else 'an empty file'})"])
    problems: list[str] = []
    per_client: list[list[tuple[float, float, int]]] = [[] for _ in range(n_clients)]
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        where = f"{key}: {path}: line {line}"
        if len(row) != 3:
            problems.append(f"{where}: expected 3 values client,start_s,end_s (got {len(row)})")
            continue
        try:
            k, start, end = int(row[0]), float(row[1]), float(row[2])
        except ValueError:
            problems.append(f"{where}: expected an integer client and two numbers (got {','.join(row)})")
            continue
        if not 0 <= k < n_clients:
            problems.append(f"{where}: client {k} is not in 0..{n_clients - 1} (clients.count={n_clients})")
        elif not (math.isfinite(start) and start >= 0 and end > start):
            problems.append(f"{where}: expected 0 <= start_s < end_s (got {start:g}, {end:g}; end_s may be inf)")
        else:
            per_client[k].append((start, end, line))
    out = []
    for k, iv in enumerate(per_client):
        iv.sort()
        for (a0, a1, la), (b0, b1, lb) in zip(iv, iv[1:]):
            if b0 < a1:
                problems.append(f"{key}: {path}: lines {la} and {lb}: client {k}'s intervals overlap")
        out.append([(a, b) for a, b, _ in iv])
    if problems:
        raise ScenarioError(problems)
    return out
