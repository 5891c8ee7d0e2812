"""Read a sweep folder written by ``cosim sweep`` into tidy DataFrames."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .load import load_run

# Summary fields that are lists or per-machine details, left out of the runs table.
_SKIP = ("clients_detail", "versions", "wall_s_by_kind")


@dataclass(frozen=True)
class SweepResults:
    """``runs``: the index joined with each finished run's summary (one row per run);
    ``events``, ``rounds`` and ``clients``: every finished run's tables, with ``run_id`` and the varied
    parameters as columns. Unpacks as ``runs, events, rounds, clients = load_sweep(folder)``."""

    runs: pd.DataFrame
    events: pd.DataFrame
    rounds: pd.DataFrame
    clients: pd.DataFrame
    params: list[str]

    def __iter__(self):
        return iter((self.runs, self.events, self.rounds, self.clients))


def load_sweep(sweep_dir: str | Path) -> SweepResults:
    """Load ``sweep.parquet`` and the runs it lists as done.

    The summary's nested fields become dotted columns (``after.accuracy``,
    ``phase_time_s.uplink``); failed or pending runs keep their index row with NaN metrics.
    """
    sweep_dir = Path(sweep_dir)
    index_path = sweep_dir / "sweep.parquet"
    if not index_path.is_file():
        raise FileNotFoundError(f"{sweep_dir}: not a cosim sweep folder (no sweep.parquet)")
    index = pd.read_parquet(index_path)
    meta_path = sweep_dir / "sweep.json"
    params = json.loads(meta_path.read_text())["params"] if meta_path.is_file() else []
    summaries, events, rounds, clients = [], [], [], []
    for row in index.to_dict("records"):
        if row["status"] != "done":
            continue
        run = load_run(sweep_dir / "runs" / row["run_id"])
        summary = {k: v for k, v in run.summary.items() if k not in _SKIP}
        summaries.append({"run_id": row["run_id"], **pd.json_normalize(summary, sep=".").iloc[0].to_dict()})
        keys = {"run_id": row["run_id"], **{p: row[p] for p in params}}
        events.append(run.events.assign(**keys))
        rounds.append(run.rounds.assign(**keys))
        if len(run.clients):
            clients.append(run.clients.assign(**keys))
    extra = pd.DataFrame(summaries)
    if len(extra):
        extra = extra[["run_id", *[c for c in extra.columns if c not in index.columns]]]
        runs = index.merge(extra, on="run_id", how="left")
    else:
        runs = index

    def stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
        if not frames:
            return pd.DataFrame(columns=["run_id", *params])
        df = pd.concat(frames, ignore_index=True)
        return df[["run_id", *params, *[c for c in df.columns if c not in ("run_id", *params)]]]

    return SweepResults(runs=runs, events=stack(events), rounds=stack(rounds), clients=stack(clients),
                        params=params)
