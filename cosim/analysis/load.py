"""Read a run folder written by ``cosim run``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class Run:
    """A finished run: the ``events``, ``rounds`` and ``clients`` DataFrames, the ``summary`` dict, the scenario text.

    Unpacks as ``events, rounds, clients, summary = load_run(folder)``. ``clients``
    has one row per round and client (empty for runs written before it existed).
    """

    events: pd.DataFrame
    rounds: pd.DataFrame
    clients: pd.DataFrame
    summary: dict
    scenario_yaml: str

    def __iter__(self):
        return iter((self.events, self.rounds, self.clients, self.summary))


def load_run(run_dir: str | Path) -> Run:
    """Load ``events.parquet``, ``rounds.parquet``, ``clients.parquet``, ``summary.json`` and ``scenario.yaml``.

    Raises
    ------
    FileNotFoundError
        If ``run_dir`` holds no ``summary.json`` (not a finished run).
    """
    run_dir = Path(run_dir)
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a finished cosim run (no summary.json)")
    clients_path = run_dir / "clients.parquet"
    return Run(
        events=pd.read_parquet(run_dir / "events.parquet"),
        rounds=pd.read_parquet(run_dir / "rounds.parquet"),
        clients=pd.read_parquet(clients_path) if clients_path.is_file() else pd.DataFrame(),
        summary=json.loads(summary_path.read_text()),
        scenario_yaml=(run_dir / "scenario.yaml").read_text(),
    )
