"""Parameter sweeps: a sweep file -> runs (one resolved scenario each) -> an engine that runs what is missing.

``read_sweep(path)`` checks the file, ``expand_runs(sweep)`` resolves and checks every
run's scenario, ``run_sweep(runs, out_dir, workers=N)`` runs the local process pool and
keeps ``out_dir/sweep.parquet`` (one row per run) up to date. Load the results with
``results.load_sweep(out_dir)``.
"""

from .expand import SweepRun, describe, expand_runs, points, run_id
from .index import INDEX_FILE, META_FILE, METRICS, RUNS_DIR
from .local import SweepOutcome, is_done, run_dir, run_sweep
from .spec import Sweep, read_sweep, sweep_from_dict

__all__ = [
    "INDEX_FILE", "META_FILE", "METRICS", "RUNS_DIR", "Sweep", "SweepOutcome", "SweepRun", "describe",
    "expand_runs", "is_done", "points", "read_sweep", "run_dir", "run_id", "run_sweep", "sweep_from_dict",
]
