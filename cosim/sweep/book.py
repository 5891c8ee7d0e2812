"""What every engine shares: which runs are done, one index row per run, failure files, progress.

A run is done when its folder ``runs/<run_id>`` holds ``summary.json`` (``run_scenario``
writes it last and swaps the folder into place at once), so starting a sweep again
runs only what is missing: runs never started, runs interrupted, runs that failed.
An engine only submits runs and hands each outcome to :meth:`SweepBook.finish` as it
arrives; the book updates ``sweep.parquet``, ``failed/<run_id>.txt`` and the bar.

Runs execute through :func:`execute`, which turns any exception of the run into a
:class:`RunFailure` (plain text, picklable) where the run happened: the error reaches
the index the same way whichever process, Dask worker or Slurm job ran it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import CosimError
from ..scenario import Scenario
from .expand import SweepRun
from .index import FAILED_DIR, RUNS_DIR, metrics, write_index, write_meta

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class SweepOutcome:
    """What a call of :func:`run_sweep` did: runs found done, run now, failed now (and interrupted or not)."""

    total: int
    skipped: int
    done: int
    failed: int
    interrupted: bool = False


@dataclass(frozen=True)
class RunFailure:
    """A run that raised: ``error`` (one line, for the index) and ``traceback`` (for ``failed/<run_id>.txt``)."""

    error: str
    traceback: str

    @classmethod
    def of(cls, exc: BaseException) -> "RunFailure":
        error = str(exc) if isinstance(exc, CosimError) else f"{type(exc).__name__}: {exc}"
        return cls(error=error, traceback="".join(traceback.format_exception(exc)))


def run_dir(out_dir: Path, run_id: str) -> Path:
    """Where run ``run_id`` of the sweep in ``out_dir`` writes its four files."""
    return Path(out_dir) / RUNS_DIR / run_id


def is_done(out_dir: Path, run_id: str) -> bool:
    return (run_dir(out_dir, run_id) / "summary.json").is_file()


def run_one(scenario: Scenario, out: Path) -> dict:
    """One run, without progress output (module level so that a spawned worker can unpickle it)."""
    from ..run import run_scenario

    return run_scenario(scenario, out, workload=None)


def limit_threads(threads: int) -> None:
    """Let this process's torch (and BLAS) use ``threads`` threads, unless the user set them already.

    Sets ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` where unset (read when
    torch loads) and calls ``torch.set_num_threads`` where torch is loaded already.
    """
    if os.environ.get("OMP_NUM_THREADS"):
        return
    for var in THREAD_VARS:
        os.environ.setdefault(var, str(threads))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def execute(run: Callable[[Scenario, Path], dict], scenario: Scenario, out: Path,
            threads: int | None = None) -> dict | RunFailure:
    """Run one scenario where the engine placed it: its summary, or a :class:`RunFailure` if it raised.

    Only ``Exception`` is caught: a KeyboardInterrupt (or a worker's shutdown) still stops it.
    """
    if threads is not None:
        limit_threads(threads)
    try:
        return run(scenario, Path(out))
    except Exception as exc:  # noqa: BLE001 - any failure of one run is recorded, not raised
        return RunFailure.of(exc)


def clean_leftovers(runs_root: Path) -> None:
    """Remove temporary folders a killed run left behind (``.<id>.partial-*``, ``.<id>.old-*``)."""
    if runs_root.is_dir():
        for p in runs_root.iterdir():
            if p.name.startswith(".") and (".partial-" in p.name or ".old-" in p.name):
                shutil.rmtree(p, ignore_errors=True)


class SweepBook:
    """The index of one sweep folder while its runs execute.

    Creating it cleans what killed runs left, reads which runs are done, and writes
    ``sweep.json`` and ``sweep.parquet``; ``todo`` lists the runs still to run.

    Parameters
    ----------
    runs : list of SweepRun
    out_dir : path
        The sweep folder (made absolute: remote workers write into it by this path).
    about : dict, optional
        Written into ``sweep.json`` (e.g. the sweep's name and base).
    """

    def __init__(self, runs: list[SweepRun], out_dir: str | Path, *, about: dict[str, Any] | None = None):
        self.out_dir = Path(out_dir).absolute()
        (self.out_dir / RUNS_DIR).mkdir(parents=True, exist_ok=True)
        clean_leftovers(self.out_dir / RUNS_DIR)
        self.param_names = list(dict.fromkeys(k for r in runs for k in r.params))
        self.rows: dict[str, dict[str, Any]] = {}
        self.todo: list[SweepRun] = []
        for r in runs:
            row = {"run_id": r.run_id, **r.params, "status": "pending", "error": None}
            if is_done(self.out_dir, r.run_id):
                summary = json.loads((self.target(r) / "summary.json").read_text())
                row.update(status="done", **metrics(summary))
            else:
                self.todo.append(r)
            self.rows[r.run_id] = row
        self.total, self.skipped = len(runs), len(runs) - len(self.todo)
        self.done = self.failed = 0
        self.bar = None
        write_meta(self.out_dir, {**(about or {}), "params": self.param_names,
                                  "runs": {r.run_id: r.params for r in runs}})
        self._write()

    def target(self, r: SweepRun) -> Path:
        """The absolute folder run ``r`` writes into."""
        return run_dir(self.out_dir, r.run_id)

    def finish(self, r: SweepRun, outcome: dict | RunFailure | BaseException) -> None:
        """Record a finished run: its summary (done) or its failure; rewrite the index at once."""
        failed_file = self.out_dir / FAILED_DIR / f"{r.run_id}.txt"
        if isinstance(outcome, BaseException):
            outcome = RunFailure.of(outcome)
        if isinstance(outcome, RunFailure):
            self.rows[r.run_id].update(status="failed", error=outcome.error)
            failed_file.parent.mkdir(exist_ok=True)
            failed_file.write_text(outcome.traceback)
            self.failed += 1
        else:
            self.rows[r.run_id].update(status="done", error=None, **metrics(outcome))
            failed_file.unlink(missing_ok=True)
            self.done += 1
        self._write()

    def adopt_finished(self) -> None:
        """Count as done the runs still pending whose folder is complete on disk.

        After an interrupt, a run whose worker finished it while the engine was stopping
        is on disk but was never reported; the index says so at once, not at the next start.
        """
        for r in self.todo:
            if self.rows[r.run_id]["status"] == "pending" and is_done(self.out_dir, r.run_id):
                self.finish(r, json.loads((self.target(r) / "summary.json").read_text()))

    def show(self, running: int) -> None:
        """Refresh the progress bar (if any) with ``running`` runs in flight."""
        if self.bar is not None:
            self.bar.update(done=self.skipped + self.done, failed=self.failed, running=running)

    def outcome(self, *, interrupted: bool = False) -> SweepOutcome:
        return SweepOutcome(total=self.total, skipped=self.skipped, done=self.done, failed=self.failed,
                            interrupted=interrupted)

    def _write(self) -> None:
        write_index(self.out_dir, list(self.rows.values()), self.param_names)
