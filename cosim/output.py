"""Writing a run folder all at once: nothing half-written is ever left where a reader would trust it."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from .errors import CosimError

RUN_FILES = ("events.parquet", "rounds.parquet", "clients.parquet", "summary.json", "scenario.yaml")
INCOMPLETE = "incomplete.json"  # a run that stopped early: its trace so far, and why (no summary.json)


def check_out_dir(out_dir: Path) -> None:
    """Refuse an output folder that exists and holds something other than a previous run."""
    if out_dir.exists() and not out_dir.is_dir():
        raise CosimError(f"--out {out_dir}: exists and is not a folder")
    if out_dir.is_dir():
        extra = sorted(p.name for p in out_dir.iterdir()
                       if p.name not in RUN_FILES and p.name not in ("checkpoint", INCOMPLETE))
        if extra:
            raise CosimError(f"--out {out_dir}: the folder holds files that are not a cosim run "
                             f"({', '.join(extra[:3])}{'...' if len(extra) > 3 else ''}); choose another folder")


def write_run(out_dir: Path, *, events: pd.DataFrame, rounds: pd.DataFrame, summary: dict,
              scenario_yaml: str, clients: pd.DataFrame | None = None) -> None:
    """Write the run files into a temporary sibling folder, then swap it into place.

    ``clients.parquet`` (one row per round and client) is written when ``clients`` is given.

    ``summary.json`` is written last inside the temporary folder, so a folder with a
    summary is complete; the rename makes the whole run appear at once.
    """
    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        events.to_parquet(tmp / "events.parquet", index=False)
        rounds.to_parquet(tmp / "rounds.parquet", index=False)
        if clients is not None:
            clients.to_parquet(tmp / "clients.parquet", index=False)
        (tmp / "scenario.yaml").write_text(scenario_yaml)
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n")
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_incomplete(out_dir: Path, *, events: pd.DataFrame, rounds: pd.DataFrame, clients: pd.DataFrame,
                     scenario_yaml: str, about: dict) -> None:
    """The trace of a run that stopped early, marked so: ``incomplete.json`` (why, where) instead of
    ``summary.json``, so no reader or sweep takes it for a finished run. Swapped into place at once."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        events.to_parquet(tmp / "events.parquet", index=False)
        rounds.to_parquet(tmp / "rounds.parquet", index=False)
        clients.to_parquet(tmp / "clients.parquet", index=False)
        (tmp / "scenario.yaml").write_text(scenario_yaml)
        (tmp / INCOMPLETE).write_text(json.dumps(about, indent=2) + "\n")
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: Path, out_dir: Path) -> None:
    """Put the finished folder ``tmp`` where ``out_dir`` is (or was): renames, so it appears at once."""
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.replace(out_dir, old / "run")
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)
