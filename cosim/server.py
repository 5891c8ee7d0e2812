"""The main server's compute: up to ``slots`` steps at once sharing its FLOP/s, the others in a FIFO queue.

``compute.server_flops_per_s`` is the server's whole compute. With one slot a
step has the server to itself and lasts ``flops / server_flops_per_s``. With
several slots the steps in service share it equally (processor sharing, the
usual model of one accelerator time-sliced between jobs): n steps in service
each progress at ``server_flops_per_s / n``, so adding slots adds concurrency,
not compute. A step that arrives when every slot is taken waits in FIFO order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import simpy

# A job whose remaining FLOPs fall below this fraction of its size is done (rounding of the shares).
_DONE_FRACTION = 1e-9


@dataclass(eq=False)
class Job:
    """One step in service: its size, what is left of it, and the event that fires when it is done."""

    flops: float
    finished: simpy.Event
    start_s: float = 0.0
    remaining: float = field(init=False)

    def __post_init__(self):
        self.remaining = self.flops

    @property
    def done_flops(self) -> float:
        return self.flops - self.remaining


class MainServer:
    """The main server: a slot resource (FIFO) and processor sharing among the steps in service.

    Parameters
    ----------
    env : simpy.Environment
    flops_per_s : float
        The server's effective compute, FLOP/s, shared by the steps in service.
    slots : int
        Steps in service at once; others queue.
    """

    def __init__(self, env: simpy.Environment, *, flops_per_s: float, slots: int):
        self.env = env
        self.flops_per_s = float(flops_per_s)
        self.slots = simpy.Resource(env, capacity=slots)
        self.jobs: list[Job] = []
        self._last_s = env.now
        self._epoch = 0

    def job(self, flops: float) -> Job:
        """A job of ``flops`` to :meth:`serve`."""
        return Job(float(flops), self.env.event())

    def serve(self, job: Job):
        """Process: serve ``job`` until done (the caller holds a slot). On an interrupt the job leaves the
        server with ``job.done_flops`` done, and the interrupt goes on up."""
        job.start_s = self.env.now
        if self.slots.capacity == 1:
            # Alone on the server: exactly flops / FLOP/s.
            try:
                yield self.env.timeout(job.flops / self.flops_per_s)
            except simpy.Interrupt:
                job.remaining = job.flops - (self.env.now - job.start_s) * self.flops_per_s
                raise
            job.remaining = 0.0
            return
        self._advance()
        self.jobs.append(job)
        self._reschedule()
        try:
            yield job.finished
        except simpy.Interrupt:
            self._advance()
            self.jobs.remove(job)
            self._reschedule()
            raise

    # -- processor sharing ------------------------------------------------------------------------

    def _advance(self) -> None:
        """Bring every job's remaining FLOPs up to now."""
        now = self.env.now
        if self.jobs:
            share = self.flops_per_s * (now - self._last_s) / len(self.jobs)
            for job in self.jobs:
                job.remaining -= share
        self._last_s = now

    def _reschedule(self) -> None:
        self._epoch += 1
        if self.jobs:
            first = min(job.remaining for job in self.jobs)
            self.env.process(self._timer(self._epoch, max(first, 0.0) * len(self.jobs) / self.flops_per_s))

    def _timer(self, epoch: int, delay_s: float):
        yield self.env.timeout(delay_s)
        if epoch != self._epoch:
            return  # a job arrived or left since: another timer took over
        self._advance()
        smallest = min(self.jobs, key=lambda j: j.remaining)
        for job in list(self.jobs):
            if job is smallest or job.remaining <= _DONE_FRACTION * job.flops:
                job.remaining = 0.0
                self.jobs.remove(job)
                job.finished.succeed()
        self._reschedule()
