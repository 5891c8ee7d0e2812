"""The local engine: the runs of a sweep one after another here, or on a pool of processes.

``workers`` = 1 runs in this process. ``workers`` > 1 uses a ``ProcessPoolExecutor`` with
the "spawn" start method (torch and fork do not mix), at most ``workers`` runs in flight.
Torch's thread count is the scenario's ``runtime.threads`` (each run sets it), never derived
from the cores or the workers here: the threads change results in the last bits, and a run
must give the same events whatever ``--workers`` is. So ``workers x runtime.threads`` should
not exceed the cores (:func:`usable_cores`), or the runs fight over them.
Ctrl-C stops submitting, waits for the runs in flight and keeps every finished run.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from .book import SweepBook, execute
from .engine_base import Engine, RunFn
from .expand import SweepRun


def usable_cores() -> int:
    """CPUs this process may run on (its affinity where the OS says, else ``os.cpu_count()``)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class LocalEngine(Engine):
    """This machine: in process (``workers`` = 1) or a spawn process pool."""

    name = "local"

    def __init__(self, *, workers: int = 1):
        self.workers = workers

    def execute(self, todo: list[SweepRun], book: SweepBook, run: RunFn) -> None:
        if self.workers == 1:
            for r in todo:
                book.show(1)
                book.finish(r, execute(run, r.scenario, book.target(r)))
        else:
            self._pool(todo, book, run)

    def _pool(self, todo: list[SweepRun], book: SweepBook, run: RunFn) -> None:
        """At most ``workers`` runs in flight; on Ctrl-C submit nothing more, record those in flight, re-raise."""
        pending = list(reversed(todo))
        flying: dict[Future, SweepRun] = {}
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx) as pool:
            def collect(done_futures, *, interrupted: bool = False) -> None:
                for fut in done_futures:
                    r = flying.pop(fut)
                    exc = fut.exception()
                    if not interrupted:
                        book.finish(r, exc if exc is not None else fut.result())
                    elif exc is None and isinstance(fut.result(), dict):
                        book.finish(r, fut.result())
                    # after Ctrl-C a run that did not finish stays pending (a worker hit by the same
                    # SIGINT, or the pool it broke, is not the run's fault); the next start runs it

            try:
                while pending or flying:
                    while pending and len(flying) < self.workers:
                        r = pending.pop()
                        flying[pool.submit(execute, run, r.scenario, book.target(r))] = r
                    book.show(len(flying))
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
