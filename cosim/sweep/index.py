"""The sweep index ``sweep.parquet``: one row per run, rewritten atomically after each finished run."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

INDEX_FILE = "sweep.parquet"
META_FILE = "sweep.json"
RUNS_DIR = "runs"
FAILED_DIR = "failed"

# Summary fields copied into the index (dotted: nested keys of summary.json).
METRICS = ("total_time_s", "critical_path_time_s", "uplink_bytes", "downlink_bytes", "energy.devices_j",
           "final_train_loss", "before.accuracy", "before.loss", "after.accuracy", "after.loss", "n_events",
           "wall_time_s")


def metrics(summary: dict) -> dict[str, Any]:
    """The index's metrics from a run's summary (NaN where the summary lacks one)."""
    out = {}
    for key in METRICS:
        value: Any = summary
        for part in key.split("."):
            value = value.get(part, math.nan) if isinstance(value, dict) else math.nan
        out[key] = value
    return out


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _plain(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, tuple, dict)) else value


def index_frame(rows: list[dict[str, Any]], param_names: list[str]) -> pd.DataFrame:
    """Rows -> a DataFrame; a parameter column whose values mix types (or hold lists) is written as text."""
    columns = ["run_id", *param_names, "status", "error", *METRICS]
    df = pd.DataFrame([{c: _plain(row.get(c)) for c in columns} for row in rows], columns=columns)
    for name in param_names:
        kinds = {type(v) for v in df[name] if v is not None and not (isinstance(v, float) and math.isnan(v))}
        if len(kinds - {int, float}) and len(kinds) > 1:
            df[name] = df[name].map(lambda v: None if v is None else str(v))
    return df


def write_index(out_dir: Path, rows: list[dict[str, Any]], param_names: list[str]) -> None:
    """Write ``sweep.parquet`` through a temporary file and ``os.replace``: readers never see half of it."""
    df = index_frame(rows, param_names)
    _atomic_write(Path(out_dir) / INDEX_FILE, lambda tmp: df.to_parquet(tmp, index=False))


def write_meta(out_dir: Path, meta: dict) -> None:
    """Write ``sweep.json`` (name, base, varied parameter names, run ids) atomically."""
    text = json.dumps(meta, indent=2) + "\n"
    _atomic_write(Path(out_dir) / META_FILE, lambda tmp: Path(tmp).write_text(text))
