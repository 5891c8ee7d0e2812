"""Engines: how the runs of a sweep are submitted and waited for (the bookkeeping is :mod:`.book`'s).

``local`` (default) is a process pool on this machine, ``dask`` a Dask distributed
cluster (started here or reached by ``--scheduler``), ``slurm`` Slurm job arrays
through submitit. The cluster engines need the ``cluster`` extra
(``pip install 'cosim[cluster]'``) and are imported only when picked.
"""

from __future__ import annotations

from typing import Any

from ..errors import CosimError
from .engine_base import ENGINES, Engine, RunFn, check_engine_options, require  # noqa: F401 - re-exported


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
