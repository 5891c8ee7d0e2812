"""Read a run folder written by ``cosim run``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class Run:
    """A finished run: ``events`` and ``rounds`` DataFrames, the ``summary`` dict, the resolved scenario text."""

    events: pd.DataFrame
    rounds: pd.DataFrame
    summary: dict
    scenario_yaml: str

    def __iter__(self):  # allows: events, rounds, summary = load_run(d)
        return iter((self.events, self.rounds, self.summary))


def load_run(run_dir: str | Path) -> Run:
    """Load ``events.parquet``, ``rounds.parquet``, ``summary.json`` and ``scenario.yaml`` of a run."""
    run_dir = Path(run_dir)
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a finished cosim run (no summary.json)")
    return Run(
        events=pd.read_parquet(run_dir / "events.parquet"),
        rounds=pd.read_parquet(run_dir / "rounds.parquet"),
        summary=json.loads(summary_path.read_text()),
        scenario_yaml=(run_dir / "scenario.yaml").read_text(),
    )
