"""``run_sweep``: the bookkeeping of :mod:`.book` around one engine of :mod:`.engines`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .book import SweepBook, SweepOutcome, run_one
from .engines import RunFn, make_engine
from .expand import SweepRun
from .progress import SweepProgress


def run_sweep(runs: list[SweepRun], out_dir: str | Path, *, workers: int = 1, progress: bool = True,
              about: dict[str, Any] | None = None, run: RunFn = run_one, engine: str = "local",
              scheduler: str | None = None, slurm: Any = None) -> SweepOutcome:
    """Run every run of ``runs`` that is not done yet into ``out_dir/runs/<run_id>``.

    ``sweep.parquet`` is rewritten after each finished run; ``sweep.json`` holds ``about``
    (e.g. the sweep's name and base), the varied parameter names and each run's parameters.
    A failed run is recorded (its error in the index, its traceback in ``failed/<run_id>.txt``)
    and does not stop the others. On KeyboardInterrupt nothing more is submitted, the finished
    runs are recorded (the others stay pending), then the interrupt is raised again.

    Parameters
    ----------
    runs : list of SweepRun
        From :func:`cosim.sweep.expand_runs`.
    out_dir : path
        The sweep folder; on a cluster, a path every worker can write to.
    workers : int
        Runs at a time (see :func:`cosim.sweep.engines.make_engine` for each engine).
    progress : bool
        Show a progress bar on stderr.
    about : dict, optional
        Extra fields for ``sweep.json``; ``about["name"]`` also names the Slurm jobs.
    run : callable
        ``run(scenario, out_dir) -> summary``; module level, so that other processes can unpickle it.
    engine : {"local", "dask", "slurm"}
    scheduler : str, optional
        A running Dask scheduler's address (dask only).
    slurm : cosim.sweep.spec.SlurmSettings, optional
        The sweep file's ``slurm:`` section (slurm only).
    """
    name = (about or {}).get("name", "sweep")
    eng = make_engine(engine, workers=workers, scheduler=scheduler, slurm=slurm, job_name=f"cosim-{name}")
    book = SweepBook(runs, out_dir, about=about)
    interrupted = False
    with SweepProgress(total=book.total, done=book.skipped, enabled=progress) as bar:
        book.bar = bar
        try:
            if book.todo:
                eng.execute(book.todo, book, run)
        except KeyboardInterrupt:
            interrupted = True
            book.adopt_finished()
        book.show(0)
    if interrupted:
        raise KeyboardInterrupt
    return book.outcome()
