"""Parameter sweeps: a sweep file -> runs (one resolved scenario each) -> an engine that runs what is missing.

``read_sweep(path)`` checks the file, ``expand_runs(sweep)`` resolves and checks every
run's scenario, ``run_sweep(runs, out_dir, workers=N, engine="local"|"dask"|"slurm")``
runs what is not done yet and keeps ``out_dir/sweep.parquet`` (one row per run) up to
date. Load the results with ``cosim.analysis.load_sweep(out_dir)``.
"""

from .book import RunFailure, SweepOutcome, is_done, run_dir, run_one
from .driver import run_sweep
from .engines import ENGINES, Engine, check_engine_options, make_engine
from .expand import SweepRun, describe, expand_runs, points, run_id
from .index import INDEX_FILE, META_FILE, METRICS, RUNS_DIR
from .spec import SlurmSettings, Sweep, read_sweep, sweep_from_dict

__all__ = [
    "ENGINES", "INDEX_FILE", "META_FILE", "METRICS", "RUNS_DIR", "Engine", "RunFailure", "SlurmSettings", "Sweep",
    "SweepOutcome", "SweepRun", "check_engine_options", "describe", "expand_runs", "is_done", "make_engine",
    "points", "read_sweep", "run_dir", "run_id", "run_one", "run_sweep", "sweep_from_dict",
]
