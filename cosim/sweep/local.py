"""The local engine: the runs of a sweep on a pool of processes, resumable, one index row per run.

A run is done when its folder ``runs/<run_id>`` holds ``summary.json`` (``run_scenario``
writes it last and swaps the folder into place at once), so starting a sweep again
runs only what is missing: runs never started, runs interrupted, runs that failed.
A failed run is recorded (its error in the index, its traceback in
``failed/<run_id>.txt``) and does not stop the others. Ctrl-C stops submitting,
waits for the runs in flight and keeps every finished run.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import CosimError
from ..scenario import Scenario
from .expand import SweepRun
from .index import FAILED_DIR, RUNS_DIR, metrics, write_index, write_meta
from .progress import SweepProgress


@dataclass(frozen=True)
class SweepOutcome:
    """What a call of :func:`run_sweep` did: runs found done, run now, failed now (and interrupted or not)."""

    total: int
    skipped: int
    done: int
    failed: int
    interrupted: bool = False


def run_dir(out_dir: Path, run_id: str) -> Path:
    """Where run ``run_id`` of the sweep in ``out_dir`` writes its four files."""
    return Path(out_dir) / RUNS_DIR / run_id


def is_done(out_dir: Path, run_id: str) -> bool:
    return (run_dir(out_dir, run_id) / "summary.json").is_file()


def run_one(scenario: Scenario, out: Path) -> dict:
    """One run, without progress output (module level so that a spawned worker can unpickle it)."""
    from ..run import run_scenario

    return run_scenario(scenario, out, workload=None)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, CosimError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _clean_leftovers(runs_root: Path) -> None:
    """Remove temporary folders a killed run left behind (``.<id>.partial-*``, ``.<id>.old-*``)."""
    if runs_root.is_dir():
        for p in runs_root.iterdir():
            if p.name.startswith(".") and (".partial-" in p.name or ".old-" in p.name):
                shutil.rmtree(p, ignore_errors=True)


def run_sweep(runs: list[SweepRun], out_dir: str | Path, *, workers: int = 1, progress: bool = True,
              about: dict[str, Any] | None = None,
              run: Callable[[Scenario, Path], dict] = run_one) -> SweepOutcome:
    """Run every run of ``runs`` that is not done yet into ``out_dir/runs/<run_id>``.

    ``workers`` > 1 uses a ``ProcessPoolExecutor`` with the "spawn" start method (torch and
    fork do not mix); ``workers`` = 1 runs one after another in this process.
    ``sweep.parquet`` is rewritten after each finished run; ``sweep.json`` holds ``about``
    (e.g. the sweep's name and base), the varied parameter names and each run's parameters.
    On KeyboardInterrupt nothing more is submitted, the runs in flight are waited for (those
    that finish are recorded, the others stay pending), then the interrupt is raised again.
    """
    if workers < 1:
        raise CosimError(f"--workers: expected a value >= 1 (got {workers})")
    out_dir = Path(out_dir)
    (out_dir / RUNS_DIR).mkdir(parents=True, exist_ok=True)
    _clean_leftovers(out_dir / RUNS_DIR)
    param_names = list(dict.fromkeys(k for r in runs for k in r.params))
    rows: dict[str, dict[str, Any]] = {}
    todo = []
    for r in runs:
        row = {"run_id": r.run_id, **r.params, "status": "pending", "error": None}
        if is_done(out_dir, r.run_id):
            summary = json.loads((run_dir(out_dir, r.run_id) / "summary.json").read_text())
            row.update(status="done", **metrics(summary))
        else:
            todo.append(r)
        rows[r.run_id] = row
    skipped = len(runs) - len(todo)
    counts = {"done": 0, "failed": 0}
    write_meta(out_dir, {**(about or {}), "params": param_names,
                         "runs": {r.run_id: r.params for r in runs}})
    write_index(out_dir, list(rows.values()), param_names)

    def record(r: SweepRun, summary: dict | None, exc: BaseException | None) -> None:
        failed_file = out_dir / FAILED_DIR / f"{r.run_id}.txt"
        if exc is None:
            rows[r.run_id].update(status="done", error=None, **metrics(summary))
            failed_file.unlink(missing_ok=True)
            counts["done"] += 1
        else:
            rows[r.run_id].update(status="failed", error=_error_text(exc))
            failed_file.parent.mkdir(exist_ok=True)
            failed_file.write_text("".join(traceback.format_exception(exc)))
            counts["failed"] += 1
        write_index(out_dir, list(rows.values()), param_names)

    interrupted = False
    with SweepProgress(total=len(runs), done=skipped, enabled=progress) as bar:
        def show(running: int) -> None:
            bar.update(done=skipped + counts["done"], failed=counts["failed"], running=running)

        try:
            if workers == 1:
                for r in todo:
                    show(1)
                    try:
                        summary = run(r.scenario, run_dir(out_dir, r.run_id))
                    except Exception as exc:  # noqa: BLE001 - any failure of one run is recorded
                        record(r, None, exc)
                    else:
                        record(r, summary, None)
            else:
                _run_pool(todo, out_dir, workers, run, record, show)
        except KeyboardInterrupt:
            interrupted = True
        show(0)
    if interrupted:
        raise KeyboardInterrupt
    return SweepOutcome(total=len(runs), skipped=skipped, done=counts["done"], failed=counts["failed"])


def _run_pool(todo, out_dir, workers, run, record, show) -> None:
    """At most ``workers`` runs in flight; on Ctrl-C submit nothing more, record those in flight, re-raise."""
    pending = list(reversed(todo))
    flying: dict[Future, SweepRun] = {}
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        def collect(done_futures, *, interrupted: bool = False) -> None:
            for fut in done_futures:
                r = flying.pop(fut)
                exc = fut.exception()
                if exc is None or not interrupted:
                    record(r, None if exc else fut.result(), exc)
                # after Ctrl-C a run that did not finish stays pending (a worker hit by the same
                # SIGINT, or the pool it broke, is not the run's fault); the next start runs it

        try:
            while pending or flying:
                while pending and len(flying) < workers:
                    r = pending.pop()
                    flying[pool.submit(run, r.scenario, run_dir(out_dir, r.run_id))] = r
                show(len(flying))
                finished, _ = wait(flying, return_when=FIRST_COMPLETED)
                collect(finished)
        except KeyboardInterrupt:
            pending.clear()
            try:
                finished, _ = wait(flying)
                collect(finished, interrupted=True)
            except KeyboardInterrupt:
                pass
            raise
