"""Analyses of an events table: the critical path and the time per phase."""

from __future__ import annotations

import pandas as pd


def critical_path(events: pd.DataFrame, *, rel_tol: float = 1e-9) -> pd.DataFrame:
    """The chain of events that sets the total simulated time, first to last.

    Walks back from the event that ends last: each step's predecessor is an event
    that ends exactly when it starts (the same client's if there is one, else any:
    the aggregation waits for the last upload, a new round for the last broadcast).
    The durations of the returned rows sum to the total time when the trace has no
    unrecorded waits.

    Raises
    ------
    ValueError
        If the chain breaks: something started later than anything before it ended.
    """
    ev = events.reset_index(drop=True)
    if ev.empty:
        return ev
    total = float(ev["t_end_s"].max())
    tol = rel_tol * max(total, 1.0)
    ends = ev["t_end_s"].to_numpy()
    current = int(ev["t_end_s"].idxmax())
    path = [current]
    while ev.at[current, "t_start_s"] > tol:
        t0 = ev.at[current, "t_start_s"]
        candidates = ev.index[(abs(ends - t0) <= tol) & (ev.index != current)]
        candidates = [c for c in candidates if c not in path]
        if not candidates:
            raise ValueError(f"critical path breaks at event {current} "
                             f"({ev.at[current, 'kind']} starting at {t0!r} s): nothing ends then")
        same = [c for c in candidates if ev.at[c, "client"] == ev.at[current, "client"]]
        current = (same or candidates)[-1]
        path.append(current)
    return ev.loc[path[::-1]]


def phase_totals(events: pd.DataFrame) -> pd.Series:
    """Seconds per event kind, summed over the given events (e.g. a critical path)."""
    return events.groupby("kind", sort=False)["duration_s"].sum()
