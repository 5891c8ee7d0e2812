"""The clock and the timed steps every strategy's processes are made of.

A compute step lasts its FLOPs (known when it starts) at the device's or the
server's FLOP/s, and its real work runs when it ends; a transfer lasts the time
the client's link needs for the bytes under the fading it has. Each writes one
event row. A client's chain of steps runs as a SimPy process that the round's
closing (a deadline, over-selection) or the device going offline may
interrupt: the step in flight is then written with ``cut`` set, its duration
up to the cut, the FLOPs done or bits delivered so far, and its work never
runs; the workload forgets the client's step in flight
(:meth:`cosim.workload.Workload.cancel`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import simpy

from .availability import Availability
from .errors import NonFinite, RunStopped
from .radio import ClientRadio
from .server import MainServer
from .trace import Recorder
from .workload import Step, StepCost

BITS_PER_BYTE = 8


def _stopped(what: str, r: int, k: int, i: int, kind: str, t_s: float) -> RunStopped:
    step = f"{kind} of iteration {i}" if i >= 0 else kind
    return RunStopped(f"{what} in round {r}, client {k}, {step} (t = {t_s:.6g} s): training diverged (a learning "
                      f"rate too large?)", {"round": r, "client": k, "iteration": i, "kind": kind, "t_s": t_s})


@dataclass(frozen=True)
class Outcome:
    """How a client's chain ended: ``status`` ``"done"`` or the cause of its cut
    (``"deadline"``, ``"over_selection"``, ``"offline"``), at ``t_end_s``; ``value``: what the chain returned."""

    status: str
    t_end_s: float
    value: object = None

    @property
    def ok(self) -> bool:
        return self.status == "done"


class TimedSteps:
    """One run's clock, the clients' radios, the main server, the recorder and the timed steps.

    Parameters
    ----------
    workload
        Does (or replays) each step and reports its cost (``cosim.workload``).
    radios : sequence of ClientRadio
        Each client's uplink and downlink (a round's plan may replace them).
    client_flops_per_s : sequence of float
        Effective compute of each device, FLOP/s.
    server_flops_per_s : float
        The main server's compute, FLOP/s, shared by the steps in service (``cosim.server``).
    server_slots : int
        Steps the main server serves at once.
    fed_server_flops_per_s : float
        The federated server that averages the adapters, FLOP/s.
    recorder : Recorder
    availability : Availability
        When each device is online; a chain is cut when its device goes offline.
    n_subchannels : int, optional
        Uplink subchannels in the cell (the bandwidth shares' denominator); default:
        all the subchannels the radios hold at the start.
    device_j_per_flop : sequence of float, optional
        Each device's compute energy per FLOP, J (``cosim.energy``); default 0 (energy not counted).
    server_j_per_flop : float
        The main and federated servers' energy per FLOP, J.
    multicast : channel.MulticastLink, optional
        The broadcast as one multicast over the whole downlink band (``channel.broadcast: multicast``).
    start_s : float
        The clock's time at the start (a run going on from a checkpoint), s.
    """

    def __init__(self, *, workload, radios: Sequence[ClientRadio], client_flops_per_s: Sequence[float],
                 server_flops_per_s: float, server_slots: int, fed_server_flops_per_s: float,
                 recorder: Recorder, availability: Availability, n_subchannels: int | None = None,
                 device_j_per_flop: Sequence[float] | None = None, server_j_per_flop: float = 0.0,
                 multicast=None, start_s: float = 0.0):
        self.env = simpy.Environment(initial_time=start_s)
        self.workload = workload
        self.radios = list(radios)
        self.home_radios = list(radios)  # as built: the equal allocation a round's plan starts from
        self.client_flops_per_s = list(client_flops_per_s)
        self.server = MainServer(self.env, flops_per_s=server_flops_per_s, slots=server_slots)
        self.fed_server_flops_per_s = fed_server_flops_per_s
        self.rec = recorder
        self.availability = availability
        self.n_subchannels = n_subchannels or sum(len(radio.subchannels) for radio in self.radios)
        self.device_j_per_flop = list(device_j_per_flop) if device_j_per_flop is not None else [0.0] * len(radios)
        self.server_j_per_flop = float(server_j_per_flop)
        self.multicast = multicast

    # -- a client's chain as a process ---------------------------------------------------------------

    def client_process(self, k: int, chain, *, on_done: Callable[[int], None] | None = None) -> simpy.Process:
        """Run generator ``chain`` as client ``k``'s process, cut when the device goes offline.

        The process's value is an :class:`Outcome`; ``on_done(k)`` is called the moment the chain
        finishes (so callers see the order in which clients finish, ties included).
        """
        def guarded():
            try:
                value = yield from chain
            except simpy.Interrupt as cut:
                self.workload.cancel(k)
                return Outcome(status=str(cut.cause), t_end_s=self.env.now)
            if on_done is not None:
                on_done(k)
            return Outcome(status="done", t_end_s=self.env.now, value=value)

        proc = self.env.process(guarded())
        off_s = self.availability.offline_at(k, self.env.now)
        if off_s != float("inf"):
            self.env.process(self._cut_at(proc, off_s, "offline"))
        return proc

    def _cut_at(self, proc: simpy.Process, t_s: float, cause: str):
        yield self.env.timeout(t_s - self.env.now)
        if proc.is_alive:
            proc.interrupt(cause)

    # -- the timed steps ------------------------------------------------------------------------------

    def compute(self, r: int, k: int, i: int, kind: str, step: Step, flops_per_s: float):
        """A compute step of ``step.flops`` at ``flops_per_s`` on a device or the federated server."""
        start = self.env.now
        duration = step.flops / flops_per_s
        try:
            yield self.env.timeout(duration)
        except simpy.Interrupt:
            done = step.flops * (self.env.now - start) / duration if duration > 0 else 0.0
            self.rec.event(round=r, iteration=i, client=k, kind=kind, t_start_s=start,
                           duration_s=self.env.now - start, flops=done, cut=True,
                           energy_j=done * self.device_j_per_flop[k], energy_of="device")
            raise
        return self._finish(r, k, i, kind, step, start, duration, self.device_j_per_flop[k], "device")

    def server_step(self, r: int, k: int, i: int, step: Step):
        """Client ``k``'s step on the main server: wait for a slot (a ``server_queue`` event), then serve it."""
        queued = self.env.now
        with self.server.slots.request() as slot:
            try:
                yield slot
            except simpy.Interrupt:
                if self.env.now > queued:
                    self.rec.event(round=r, iteration=i, client=k, kind="server_queue", t_start_s=queued,
                                   duration_s=self.env.now - queued, cut=True)
                raise
            if self.env.now > queued:
                self.rec.event(round=r, iteration=i, client=k, kind="server_queue", t_start_s=queued,
                               duration_s=self.env.now - queued)
            start = self.env.now
            job = self.server.job(step.flops)
            try:
                yield from self.server.serve(job)
            except simpy.Interrupt:
                self.rec.event(round=r, iteration=i, client=k, kind="server_step", t_start_s=start,
                               duration_s=self.env.now - start, flops=job.done_flops, cut=True,
                               energy_j=job.done_flops * self.server_j_per_flop, energy_of="server")
                raise
            if self.server.slots.capacity == 1:
                duration = step.flops / self.server.flops_per_s  # exact, as the timeout it waited
            else:
                duration = self.env.now - start
            return self._finish(r, k, i, "server_step", step, start, duration, self.server_j_per_flop, "server")

    def _finish(self, r: int, k: int, i: int, kind: str, step: Step, start: float, duration: float,
                j_per_flop: float, energy_of: str) -> StepCost:
        wall = time.perf_counter()
        try:
            cost = step.run()
        except NonFinite as exc:  # the workload saw a gradient that is not finite
            raise _stopped(str(exc), r, k, i, kind, self.env.now) from None
        wall = time.perf_counter() - wall
        if cost.loss is not None and not math.isfinite(cost.loss):
            raise _stopped(f"the training loss is {cost.loss}", r, k, i, kind, self.env.now)
        self.rec.event(round=r, iteration=i, client=k, kind=kind, t_start_s=start, duration_s=duration,
                       flops=cost.flops, loss=cost.loss, wall_s=wall, energy_j=cost.flops * j_per_flop,
                       energy_of=energy_of)
        return cost

    def transfer(self, r: int, k: int, i: int, kind: str, nbytes: int, *, down: bool):
        """Send ``nbytes`` over client ``k``'s downlink or uplink, starting now; returns the duration, s."""
        radio = self.radios[k]
        link = radio.downlink if down else radio.uplink
        start = self.env.now
        tx = link.transfer(BITS_PER_BYTE * nbytes, start)
        power_w = radio.downlink_power_w if down else radio.uplink_power_w
        radio_kw = dict(snr_db=tx.snr_db, n_subchannels=len(link.subchannels), power_w=power_w,
                        distance_m=tx.distance_m, energy_of="base_station" if down else "device")
        try:
            yield self.env.timeout(tx.duration_s)
        except simpy.Interrupt:
            sent = int(link.bits_between(start, self.env.now) // BITS_PER_BYTE)
            elapsed = self.env.now - start
            # Energy up to the cut; retransmissions in proportion to the air time used (their timing is not kept).
            share = elapsed / tx.duration_s if tx.duration_s > 0 else 0.0
            self.rec.event(round=r, iteration=i, client=k, kind=kind, t_start_s=start, duration_s=elapsed,
                           nbytes=sent, rate_bps=BITS_PER_BYTE * sent / elapsed if elapsed > 0 else float("nan"),
                           cut=True, energy_j=tx.energy_j * share, retransmissions=int(tx.retransmissions * share),
                           **radio_kw)
            raise
        self.rec.event(round=r, iteration=i, client=k, kind=kind, t_start_s=start, duration_s=tx.duration_s,
                       nbytes=nbytes, rate_bps=tx.mean_rate_bps if nbytes else float("nan"),
                       energy_j=tx.energy_j, retransmissions=tx.retransmissions, **radio_kw)
        return tx.duration_s

    def multicast_share(self, r: int, k: int, nbytes: int, tx, receivers: int, *, first: bool):
        """Client ``k``'s reception of the multicast ``tx`` (a ``channel.Transfer`` started now for
        ``receivers`` clients): one ``broadcast`` row per receiver, each with its share of the energy;
        the transfer's retransmissions are written on the ``first`` receiver's row only."""
        start = self.env.now
        kw = dict(snr_db=tx.snr_db, n_subchannels=len(self.multicast.subchannels),
                  power_w=float(self.multicast.power_w.sum()), energy_of="base_station",
                  distance_m=self.radios[k].downlink.distance_at_m(start))
        try:
            yield self.env.timeout(tx.duration_s)
        except simpy.Interrupt:
            elapsed = self.env.now - start
            share = elapsed / tx.duration_s if tx.duration_s > 0 else 0.0
            self.rec.event(round=r, client=k, kind="broadcast", t_start_s=start, duration_s=elapsed,
                           nbytes=int(nbytes * share), rate_bps=tx.mean_rate_bps, cut=True,
                           energy_j=tx.energy_j * share / receivers, **kw)
            raise
        self.rec.event(round=r, client=k, kind="broadcast", t_start_s=start, duration_s=tx.duration_s,
                       nbytes=nbytes, rate_bps=tx.mean_rate_bps if nbytes else float("nan"),
                       energy_j=tx.energy_j / receivers, retransmissions=tx.retransmissions if first else 0, **kw)
        return tx.duration_s

    def fed_server_step(self, r: int, step: Step, kind: str = "aggregate"):
        """The federated server's compute (averaging, mixing); returns the step's cost."""
        start = self.env.now
        duration = step.flops / self.fed_server_flops_per_s
        yield self.env.timeout(duration)
        return self._finish(r, -1, -1, kind, step, start, duration, self.server_j_per_flop, "server")
