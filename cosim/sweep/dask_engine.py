"""The Dask engine: each run is one task on a Dask distributed cluster.

``cosim sweep SWEEP.yaml --engine dask --workers 4`` starts a ``LocalCluster`` of 4
worker processes (one thread each, no per-worker memory limit, no dashboard, only error
logs shown) for the sweep and closes it at the end. ``--scheduler ADDRESS`` connects to a
running cluster instead and leaves it running. Every run is submitted at once (task key
``cosim-run-<run_id>``) and recorded as it completes; Dask queues what the workers
cannot take yet. The workers need cosim installed (same versions, for bit-identical
events) and must reach the sweep folder by the same absolute path (a shared file system).
Dask's nanny starts workers with ``OMP_NUM_THREADS=1``: each run's torch uses one thread.

On a batch cluster, dask-jobqueue (``pip install dask-jobqueue``) starts the workers as
jobs; pass its scheduler address, or drive the sweep from Python::

    from dask_jobqueue import SLURMCluster          # or PBSCluster, SGECluster, LSFCluster
    cluster = SLURMCluster(queue="gpu", cores=4, processes=1, memory="16GB", walltime="02:00:00")
    cluster.scale(jobs=8)                           # or cluster.adapt(maximum_jobs=32)
    print(cluster.scheduler_address)                # -> cosim sweep s.yaml --engine dask --scheduler tcp://...

    from cosim.sweep import expand_runs, read_sweep, run_sweep
    run_sweep(expand_runs(read_sweep("s.yaml")), "results/s", engine="dask",
              scheduler=cluster.scheduler_address)

On Kubernetes, the Dask Kubernetes operator (``pip install dask-kubernetes``) creates a
``DaskCluster`` resource; ``KubeCluster(name="cosim", image=<an image with cosim>)`` from
``dask_kubernetes.operator`` gives a ``scheduler_address`` to pass the same way (the sweep
folder must be a volume mounted in every worker pod at the same path).

Ctrl-C cancels every task not finished yet and keeps the finished runs; a task already
running on a remote worker may still complete and write its folder, which the next
start counts as done.
"""

from __future__ import annotations

import logging
import signal
import threading

from ..errors import CosimError
from .book import SweepBook, execute
from .engine_base import Engine, RunFn, require
from .expand import SweepRun


class DaskEngine(Engine):
    """Runs as tasks of a Dask cluster: a ``LocalCluster`` of ``workers`` processes, or ``scheduler``'s."""

    name = "dask"

    def __init__(self, *, workers: int = 1, scheduler: str | None = None, connect_timeout_s: float = 30.0):
        self.distributed = require("dask", "distributed")
        self.workers, self.scheduler, self.connect_timeout_s = workers, scheduler, connect_timeout_s

    def _cluster(self):
        if self.scheduler is not None:
            return None
        # The workers are started with SIGINT ignored (they inherit that): Ctrl-C at the terminal
        # reaches the whole process group, and it is this process that stops the sweep and the cluster.
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
        try:
            return self.distributed.LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                                 memory_limit=0, dashboard_address=None, silence_logs=logging.ERROR)
        finally:
            if main_thread:
                signal.signal(signal.SIGINT, previous)

    def _client(self, cluster):
        if cluster is not None:
            return self.distributed.Client(cluster)
        try:
            return self.distributed.Client(self.scheduler, timeout=self.connect_timeout_s)
        except (OSError, TimeoutError) as exc:
            raise CosimError(f"--scheduler {self.scheduler}: cannot reach a Dask scheduler there ({exc})") from None

    def execute(self, todo: list[SweepRun], book: SweepBook, run: RunFn) -> None:
        cluster = self._cluster()
        try:
            with self._client(cluster) as client:
                self._run(client, todo, book, run)
        finally:
            if cluster is not None:
                cluster.close()

    def _run(self, client, todo: list[SweepRun], book: SweepBook, run: RunFn) -> None:
        flying = {client.submit(execute, run, r.scenario, book.target(r), key=f"cosim-run-{r.run_id}",
                                pure=False): r for r in todo}

        def slots() -> int:
            workers = client.scheduler_info().get("workers", {})
            return sum(w.get("nthreads", 1) for w in workers.values()) or 1

        try:
            book.show(min(len(flying), slots()))
            for fut in self.distributed.as_completed(list(flying)):
                r = flying.pop(fut)
                try:
                    outcome = fut.result()
                except Exception as exc:  # noqa: BLE001 - a lost worker, a cancelled task: the run failed
                    outcome = exc
                book.finish(r, outcome)
                book.show(min(len(flying), slots()))
        except KeyboardInterrupt:
            for fut, r in list(flying.items()):
                if fut.status == "finished":      # finished runs are kept; a failure stays pending
                    del flying[fut]
                    outcome = fut.result()
                    if isinstance(outcome, dict):
                        book.finish(r, outcome)
            client.cancel(list(flying))
            raise
