"""The Slurm engine: the runs of a sweep as one Slurm job array, submitted through submitit.

``cosim sweep SWEEP.yaml --engine slurm`` reads the sweep file's optional ``slurm:``
section (:class:`cosim.sweep.spec.SlurmSettings`): each array task asks for
``time_min`` minutes, ``cpus_per_task`` CPUs (also its torch threads), ``gpus_per_node``
GPUs and ``mem_gb`` GB on ``partition``; at most ``array_parallelism`` tasks run at
once (default ``--workers``). The jobs are named ``cosim-<sweep name>``; submitit
keeps their scripts, pickles and logs in ``<out>/slurm_logs``. Submit from a login
node with the sweep folder on a file system the compute nodes share, and cosim
installed in the same environment there.

``slurm.cluster: local`` runs the same jobs as subprocesses of this machine
(submitit's local executor; at most ``array_parallelism`` at once), ``debug`` in this
process one after another: both for trying a sweep out without a cluster.

The submitting process waits and records each run as its job finishes. Killed, it
loses nothing finished (the runs are on disk); on Slurm its array keeps running:
``scancel --name cosim-<sweep name>`` it, or let it finish, before starting the same
sweep again, which then runs only what is missing. Ctrl-C cancels the jobs not finished.

Preempted, or signalled near its time limit, a task is requeued (submitit's
checkpoint protocol, :class:`RequeuedRun`) and its run goes on from the last
checkpoint in its run folder when the scenario sets ``checkpoint.every_rounds``.
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import CosimError
from .book import RunFailure, SweepBook, execute
from .engine_base import Engine, RunFn, require
from .expand import SweepRun
from .spec import SlurmSettings

LOGS_DIR = "slurm_logs"
POLL_S = {"slurm": 10.0, "local": 0.25, "debug": 0.0}


def executor_parameters(settings: SlurmSettings, *, array_parallelism: int, job_name: str) -> dict[str, Any]:
    """Keyword arguments of submitit's ``AutoExecutor.update_parameters`` for ``settings``.

    Generic names (``timeout_min``, ``cpus_per_task``, ``gpus_per_node``, ``mem_gb``, ``name``)
    apply to every executor; ``slurm_``-prefixed ones only to Slurm (the others ignore them).
    """
    params: dict[str, Any] = {"name": job_name, "timeout_min": settings.time_min,
                              "cpus_per_task": settings.cpus_per_task, "gpus_per_node": settings.gpus_per_node,
                              "slurm_array_parallelism": array_parallelism}
    if settings.mem_gb is not None:
        params["mem_gb"] = settings.mem_gb
    if settings.partition is not None:
        params["slurm_partition"] = settings.partition
    return params


class RequeuedRun:
    """One run as a submitit job that Slurm may requeue.

    Slurm signals a task when it is preempted, and shortly before its time limit; submitit
    then calls :meth:`checkpoint` and requeues what it returns (up to
    ``slurm_max_num_timeout`` = 3 times at the time limit). Started again on the same run
    folder, :func:`cosim.run.run_scenario` goes on from the run's last complete checkpoint,
    so a scenario with ``checkpoint.every_rounds`` loses at most N rounds to a preemption
    or a time limit. A scenario without checkpoints starts over after a preemption, and is
    not requeued at its time limit (it would only hit the limit again).

    Parameters
    ----------
    time_min : int
        The task's time limit in minutes (``slurm.time_min``).
    """

    def __init__(self, time_min: int):
        self.time_min = time_min
        self.started: float | None = None

    def __call__(self, run: RunFn, scenario, out, threads: int | None = None):
        self.started = time.time()
        return execute(run, scenario, out, threads)

    def at_time_limit(self, now: float | None = None) -> bool:
        """Whether a signal now means the time limit (submitit's rule: past 80% of it, or 10 min before)."""
        limit = self.time_min * 60.0
        ran = (time.time() if now is None else now) - (self.started or 0.0)
        return self.started is not None and ran >= min(0.8 * limit, limit - 600.0)

    def checkpoint(self, run: RunFn, scenario, out, threads: int | None = None):
        """What submitit requeues: this run again on the same folder, or ``None`` for no requeue."""
        if scenario.checkpoint.every_rounds <= 0 and self.at_time_limit():
            return None
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(RequeuedRun(self.time_min), run, scenario, out, threads)


def _outcome(job) -> dict | RunFailure:
    """A finished job's summary, or why it failed (a timeout, a cancelled or lost job, a broken pickle)."""
    try:
        return job.result()
    except Exception as exc:  # noqa: BLE001 - submitit's UncompletedJobError / FailedJobError
        text = str(exc)
        return RunFailure(error=f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}", traceback=text)


class SlurmEngine(Engine):
    """Runs as submitit jobs: one Slurm array, or local subprocesses / in-process calls for trying out."""

    name = "slurm"

    def __init__(self, *, settings: SlurmSettings | None = None, workers: int = 1, job_name: str = "cosim-sweep"):
        self.submitit = require("slurm", "submitit")
        self.settings = settings or SlurmSettings()
        self.cap = self.settings.array_parallelism or workers
        self.job_name = job_name
        if self.settings.cluster == "slurm" and self.submitit.SlurmExecutor.affinity() <= 0:
            raise CosimError("--engine slurm: no Slurm on this machine (srun not found); run it on a login "
                             "node, or set slurm.cluster: local in the sweep file to run the jobs here")

    def executor(self, book: SweepBook):
        """submitit's ``AutoExecutor`` for this sweep, its parameters set."""
        ex = self.submitit.AutoExecutor(folder=book.out_dir / LOGS_DIR, cluster=self.settings.cluster)
        ex.update_parameters(**executor_parameters(self.settings, array_parallelism=self.cap,
                                                   job_name=self.job_name))
        return ex

    def task(self) -> RequeuedRun:
        """What each job runs: one run, requeued after a preemption or at its time limit."""
        return RequeuedRun(self.settings.time_min)

    def submit_array(self, ex, todo: list[SweepRun], book: SweepBook, run: RunFn) -> list:
        """``sbatch`` one array of ``todo``: its jobs, in order; sbatch's refusal is a user error."""
        utils = self.submitit.core.utils
        n = len(todo)
        try:
            return ex.map_array(self.task(), [run] * n, [r.scenario for r in todo],
                                [book.target(r) for r in todo], [self.settings.cpus_per_task] * n)
        except (utils.FailedJobError, utils.FailedSubmissionError) as exc:
            raise CosimError(f"--engine slurm: sbatch refused the job array: {str(exc).strip()}") from None

    def execute(self, todo: list[SweepRun], book: SweepBook, run: RunFn) -> None:
        ex = self.executor(book)
        threads = self.settings.cpus_per_task
        pending = list(reversed(todo))
        flying: list[tuple[Any, SweepRun]] = []
        if self.settings.cluster == "slurm":            # one array; Slurm enforces the cap (%N)
            flying, pending = list(zip(self.submit_array(ex, todo, book, run), todo)), []
        try:
            while pending or flying:
                while pending and len(flying) < self.cap:  # local/debug: keep the cap ourselves
                    r = pending.pop()
                    flying.append((ex.submit(self.task(), run, r.scenario, book.target(r), threads), r))
                book.show(min(len(flying), self.cap))
                finished = [(job, r) for job, r in flying if job.done()]
                if not finished:
                    time.sleep(POLL_S[self.settings.cluster])
                for job, r in finished:
                    flying.remove((job, r))
                    book.finish(r, _outcome(job))
        except KeyboardInterrupt:
            pending.clear()
            self._stop(flying, book)
            raise

    def _stop(self, flying: list[tuple[Any, SweepRun]], book: SweepBook) -> None:
        """After Ctrl-C: keep the runs whose job succeeded, cancel the others (they stay pending)."""
        for job, r in flying:
            # a debug job's done() would run it now; it has not started if it is still here
            finished = self.settings.cluster != "debug" and job.done()
            outcome = _outcome(job) if finished else None
            if isinstance(outcome, dict):
                book.finish(r, outcome)
            elif not finished:
                job.cancel(check=False)
