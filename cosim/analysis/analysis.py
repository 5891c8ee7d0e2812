"""Analyses of a run's tables: critical paths, time per phase, bytes per direction, accuracy over time.

Everything here works by event ``kind`` and never assumes a fixed list of kinds:
a strategy that records new kinds (``local_step`` ...) gets them as new columns.
Transfers are told apart by direction with :data:`UPLINK_KINDS` and
:data:`DOWNLINK_KINDS`; a kind in neither moves no bytes over the radio.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

# Kinds whose bytes cross the radio towards the base station / towards the devices.
UPLINK_KINDS = ("uplink", "adapter_upload")
DOWNLINK_KINDS = ("downlink", "broadcast", "model_download")
# Kinds that are time spent waiting (for a shared resource, or for a device to come online).
WAIT_KINDS = ("server_queue", "idle")


def direction(kind: str) -> str | None:
    """``"uplink"``, ``"downlink"`` or ``None`` (not a radio transfer) for an event kind."""
    if kind in UPLINK_KINDS:
        return "uplink"
    if kind in DOWNLINK_KINDS:
        return "downlink"
    return None


def critical_path(events: pd.DataFrame, *, rel_tol: float = 1e-9, start_s: float = 0.0) -> pd.DataFrame:
    """The chain of events that sets the total simulated time, first to last.

    Walks back from the event that ends last: each step's predecessor is an event
    that ends exactly when it starts (the same client's if there is one, else any:
    the aggregation waits for the last upload, a new round for the last broadcast).
    The walk stops at an event that starts at ``start_s`` (0: the run's start; a
    round's start time for one round's events). The durations of the returned rows
    sum to ``t_end - start_s`` when the trace has no unrecorded waits.

    Raises
    ------
    ValueError
        If the chain breaks: something started later than anything before it ended.
    """
    ev = events.reset_index(drop=True)
    if ev.empty:
        return ev
    ends = ev["t_end_s"].to_numpy(dtype=float)
    starts = ev["t_start_s"].to_numpy(dtype=float)
    clients = ev["client"].to_numpy()
    total = float(ends.max())
    tol = rel_tol * max(total, 1.0)
    by_end = np.argsort(ends, kind="stable")   # events that end at a time: a binary search, not a scan
    sorted_ends = ends[by_end]
    current = int(np.argmax(ends))
    path, on_path = [current], {current}
    while starts[current] - start_s > tol:
        t0 = starts[current]
        lo, hi = np.searchsorted(sorted_ends, [t0 - tol, t0 + tol], side="left")[0], \
            np.searchsorted(sorted_ends, t0 + tol, side="right")
        candidates = sorted(int(c) for c in by_end[lo:hi] if int(c) not in on_path)
        if not candidates:
            raise ValueError(f"critical path breaks at event {events.index[current]} "
                             f"({ev.at[current, 'kind']} starting at {float(t0)!r} s): nothing ends then")
        same = [c for c in candidates if clients[c] == clients[current]]
        current = (same or candidates)[-1]
        path.append(current)
        on_path.add(current)
    return ev.loc[path[::-1]]


def phase_totals(events: pd.DataFrame) -> pd.Series:
    """Seconds per event kind, summed over the given events (e.g. a critical path)."""
    return events.groupby("kind", sort=False)["duration_s"].sum()


def _kinds_in_order(events: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(events["kind"].astype(str)))


def round_critical_paths(events: pd.DataFrame, rounds: pd.DataFrame | None = None, *,
                         rel_tol: float = 1e-9) -> pd.DataFrame:
    """The critical path of each round, rounds in order, each path first event to last.

    A round's path walks back from the round's last event to one that starts at the
    round's start: ``rounds.t_start_s`` when ``rounds`` is given, else the earliest
    start among the round's events. Per round, the path's ``duration_s`` sum to the
    round's duration (``t_end - t_start``) when the trace has no unrecorded waits.

    Returns
    -------
    DataFrame
        The path events with their original index and columns (``round`` among them).

    Raises
    ------
    ValueError
        If a round's chain breaks (see :func:`critical_path`).
    """
    starts = dict(zip(rounds["round"], rounds["t_start_s"])) if rounds is not None else {}
    paths = []
    for r, sub in events.groupby("round", sort=True):
        start = float(starts.get(r, sub["t_start_s"].min()))
        path = critical_path(sub, rel_tol=rel_tol, start_s=start)
        path.index = sub.index[path.index]       # back to the caller's row labels
        paths.append(path)
    if not paths:
        return events.iloc[:0]
    return pd.concat(paths)


def phase_time_per_client(events: pd.DataFrame, *, by_round: bool = False) -> pd.DataFrame:
    """Busy seconds per event kind and client (client -1: the federated server).

    Parameters
    ----------
    events : DataFrame
        An events table (``client``, ``kind``, ``duration_s``; ``round`` when ``by_round``).
    by_round : bool
        Index by ``(round, client)`` instead of ``client``.

    Returns
    -------
    DataFrame
        One row per client (or round and client), one column per kind in order of
        first appearance, seconds; 0 where a client has no event of a kind.
    """
    keys = ["round", "client"] if by_round else ["client"]
    kinds = _kinds_in_order(events)
    table = (events.assign(kind=events["kind"].astype(str))
             .groupby([*keys, "kind"])["duration_s"].sum().unstack("kind", fill_value=0.0))
    return table.reindex(columns=kinds, fill_value=0.0).astype("float64")


def bytes_by_direction(events: pd.DataFrame, *, by_client: bool = False) -> pd.DataFrame:
    """Bytes sent over the radio per round, uplink and downlink.

    Uplink counts :data:`UPLINK_KINDS` (activations, adapters), downlink
    :data:`DOWNLINK_KINDS` (gradients, the broadcast aggregate).

    Returns
    -------
    DataFrame
        Index ``round`` (or ``(round, client)`` when ``by_client``), int64 columns
        ``uplink_bytes`` and ``downlink_bytes``; every round of ``events`` appears,
        with 0 where nothing went that way.
    """
    keys = ["round", "client"] if by_client else ["round"]
    dirs = events["kind"].astype(str).map(direction)
    moved = events.assign(direction=dirs.map(lambda d: f"{d}_bytes" if d else None))
    moved = moved[dirs.notna()]
    table = moved.groupby([*keys, "direction"])["bytes"].sum().unstack("direction", fill_value=0)
    index = events.groupby(keys).size().index         # rounds (clients) that moved nothing still appear
    table = table.reindex(index=index, columns=["uplink_bytes", "downlink_bytes"], fill_value=0)
    table.columns.name = None
    return table.fillna(0).astype("int64")


def wilson_interval(p, n, *, z: float = 1.959964) -> tuple:
    """Wilson score interval of a binomial proportion: accuracy ``p`` measured on ``n`` examples.

    ``(p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)``, 95% for the default ``z``
    (Wilson 1927; Brown, Cai and DasGupta 2001 recommend it over the normal interval at
    small ``n``). Works on scalars and arrays; NaN where ``n`` is 0 or NaN.
    """
    p, n = np.asarray(p, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z / denom * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        bad = ~(n > 0)
        lo, hi = np.where(bad, np.nan, centre - half), np.where(bad, np.nan, centre + half)
    return (float(lo), float(hi)) if lo.ndim == 0 else (lo, hi)


def accuracy_vs_time(rounds: pd.DataFrame, summary: dict | None = None) -> pd.DataFrame:
    """Held-out accuracy and loss against simulated time, one row per evaluation.

    Rows: the evaluation before training at ``time_s = 0`` (``round = -1``, from
    ``summary["before"]``), every round evaluated during training (``rounds.accuracy``
    not NaN) at the round's end, and the evaluation after training at the run's end
    (from ``summary["after"]``) when the last round was not evaluated in the table.

    Returns
    -------
    DataFrame
        Columns ``round``, ``time_s`` (simulated, s), ``accuracy`` (fraction correct),
        ``loss`` (mean held-out cross-entropy), ``n`` (held-out examples, from the
        summary) and ``accuracy_lo`` / ``accuracy_hi`` (the 95% Wilson interval of the
        accuracy, :func:`wilson_interval`), sorted by time.
    """
    rows = []
    summary = summary or {}
    before, after = summary.get("before") or {}, summary.get("after") or {}
    if before:
        rows.append({"round": -1, "time_s": 0.0, "accuracy": before.get("accuracy", math.nan),
                     "loss": before.get("loss", math.nan)})
    if "accuracy" in rounds.columns:
        evaluated = rounds[rounds["accuracy"].notna()]
        for row in evaluated.itertuples(index=False):
            rows.append({"round": int(row.round), "time_s": float(row.t_end_s), "accuracy": float(row.accuracy),
                         "loss": float(getattr(row, "eval_loss", math.nan))})
    if after:
        last = int(rounds["round"].max()) if len(rounds) else summary.get("rounds", 0) - 1
        if not any(r["round"] == last for r in rows):
            end = summary.get("total_time_s", float(rounds["t_end_s"].max()) if len(rounds) else math.nan)
            rows.append({"round": last, "time_s": float(end), "accuracy": after.get("accuracy", math.nan),
                         "loss": after.get("loss", math.nan)})
    out = pd.DataFrame(rows, columns=["round", "time_s", "accuracy", "loss"])
    out = out.astype({"round": "int64", "time_s": "float64", "accuracy": "float64", "loss": "float64"}) \
        .sort_values("time_s", kind="stable").reset_index(drop=True)
    out["n"] = float((after or before).get("n", math.nan))       # one held-out set for every evaluation
    out["accuracy_lo"], out["accuracy_hi"] = wilson_interval(out["accuracy"].to_numpy(), out["n"].to_numpy())
    return out


def client_round_delay(events: pd.DataFrame, rounds: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each client's delay in each round: from the round's start to its adapter upload finishing.

    The round starts at ``rounds.t_start_s`` when given, else at the earliest start
    among the round's events. A client with no ``adapter_upload`` in a round (dropped
    from it) has no row for that round.

    Returns
    -------
    DataFrame
        Columns ``round``, ``client``, ``delay_s`` (simulated, s), sorted by round and client.
    """
    if rounds is not None:
        starts = rounds.set_index("round")["t_start_s"]
    else:
        starts = events.groupby("round")["t_start_s"].min()
    up = events[(events["kind"] == "adapter_upload") & (events["client"] >= 0)]
    done = up.groupby(["round", "client"])["t_end_s"].max().reset_index()
    done["delay_s"] = done["t_end_s"] - done["round"].map(starts).astype("float64")
    return done[["round", "client", "delay_s"]].astype({"round": "int64", "client": "int64"})
