"""Engines: how the runs of a sweep are submitted and waited for (the bookkeeping is :mod:`.book`'s).

``local`` (default) is a process pool on this machine, ``dask`` a Dask distributed
cluster (started here or reached by ``--scheduler``), ``slurm`` Slurm job arrays
through submitit. The cluster engines need the ``cluster`` extra
(``pip install 'cosim[cluster]'``) and are imported only when picked.
"""

from __future__ import annotations

import abc
import importlib
from pathlib import Path
from typing import Any, Callable

from ..errors import CosimError
from ..scenario import Scenario
from .book import SweepBook
from .expand import SweepRun

ENGINES = ("local", "dask", "slurm")
EXTRA_HINT = "pip install 'cosim[cluster]'"

RunFn = Callable[[Scenario, Path], dict]


class Engine(abc.ABC):
    """Runs a list of runs somewhere and reports each outcome to the book as it arrives."""

    name: str

    @abc.abstractmethod
    def execute(self, todo: list[SweepRun], book: SweepBook, run: RunFn) -> None:
        """Run ``run(scenario, book.target(r))`` for every ``r`` of ``todo`` through :func:`.book.execute`.

        Call ``book.finish(r, outcome)`` once per run as it finishes and ``book.show(n)``
        with the number in flight. On KeyboardInterrupt: submit nothing more, stop or cancel
        what has not finished, record the runs that finished successfully, re-raise.
        """


def require(engine: str, module: str) -> Any:
    """Import ``module`` for ``--engine engine``; a clear user error when the cluster extra is missing."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise CosimError(f"--engine {engine}: needs the cluster extra: {EXTRA_HINT}") from None


def check_engine_options(engine: str, scheduler: str | None) -> None:
    """Refuse an unknown engine, and ``--scheduler`` with an engine other than dask."""
    if engine not in ENGINES:
        raise CosimError(f"--engine: expected one of {', '.join(ENGINES)} (got {engine!r})")
    if scheduler is not None and engine != "dask":
        raise CosimError(f"--scheduler: only valid with --engine dask (got --engine {engine})")


def make_engine(engine: str, *, workers: int, scheduler: str | None = None, slurm: Any = None,
                job_name: str = "cosim-sweep") -> Engine:
    """The engine called ``engine`` (checked, and its package imported, before anything runs).

    Parameters
    ----------
    engine : {"local", "dask", "slurm"}
    workers : int
        Runs at a time: the local pool's size, the size of the Dask ``LocalCluster`` started
        when no ``scheduler`` is given, Slurm's cap on simultaneous array tasks unless the
        sweep file's ``slurm.array_parallelism`` sets it.
    scheduler : str, optional
        Address of a running Dask scheduler (dask only).
    slurm : cosim.sweep.spec.SlurmSettings, optional
        The sweep file's ``slurm:`` section (slurm only; defaults when absent).
    job_name : str
        The Slurm job name (so that ``scancel --name`` finds the array).
    """
    check_engine_options(engine, scheduler)
    if workers < 1:
        raise CosimError(f"--workers: expected a value >= 1 (got {workers})")
    if engine == "dask":
        from .dask_engine import DaskEngine

        return DaskEngine(workers=workers, scheduler=scheduler)
    if engine == "slurm":
        from .slurm_engine import SlurmEngine

        return SlurmEngine(settings=slurm, workers=workers, job_name=job_name)
    from .local import LocalEngine

    return LocalEngine(workers=workers)
