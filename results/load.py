"""Read a run folder written by ``cosim run``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class Run:
    """A finished run: ``events``, ``rounds`` and ``clients`` DataFrames, the ``summary`` dict, the scenario text.

    ``clients`` has one row per round and client (empty for runs written before it existed).
    """

    events: pd.DataFrame
    rounds: pd.DataFrame
    summary: dict
    scenario_yaml: str
    clients: pd.DataFrame | None = None

    def __iter__(self):  # allows: events, rounds, summary = load_run(d)
        return iter((self.events, self.rounds, self.summary))


def load_run(run_dir: str | Path) -> Run:
    """Load ``events.parquet``, ``rounds.parquet``, ``clients.parquet``, ``summary.json`` and ``scenario.yaml``."""
    run_dir = Path(run_dir)
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a finished cosim run (no summary.json)")
    return Run(
        events=pd.read_parquet(run_dir / "events.parquet"),
        rounds=pd.read_parquet(run_dir / "rounds.parquet"),
        summary=json.loads(summary_path.read_text()),
        scenario_yaml=(run_dir / "scenario.yaml").read_text(),
        clients=pd.read_parquet(run_dir / "clients.parquet") if (run_dir / "clients.parquet").is_file()
        else pd.DataFrame(),
    )
