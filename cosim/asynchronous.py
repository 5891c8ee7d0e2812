"""Asynchronous aggregation, no barrier: FedAsync and FedBuff.

Up to ``ceil(participation.fraction x K)`` online clients work at once, each in
a loop of updates: take the newest global adapter (a ``model_download`` when it
does not hold it yet), do its local work, upload. The federated server takes
the uploads one at a time, in the order they finish:

- FedAsync (Xie et al., 2019): each arriving adapter x_k is mixed in at once,
  ``x <- (1 - w) x + w x_k`` with ``w = alpha s(tau)``, ``s(tau) = (1 + tau)^-a``;
- FedBuff (Nguyen et al., 2022): the server keeps each update
  ``delta_k = x_k - (the global adapter k started from)``, drops one staler than
  ``max_staleness``, and after ``buffer_size`` = M updates applies
  ``x <- x + sum_k lr s(tau_k) delta_k / M`` with ``s(tau) = 1 / sqrt(1 + tau)``.

``tau`` (staleness) is the number of global versions since the update's base.
A client whose update the server has taken starts again at once from the newest
global adapter; with fewer clients at work than the concurrency allows, an idle
online client is drawn (uniformly, from the stream ``("participation",
"async", n)``). Every device keeps its equal share of the band. The run ends
after ``training.rounds`` server updates or ``aggregation.time_budget_s``
simulated seconds; work still in flight then is cut (``status`` ``end``).

Trace: client events carry the base version as ``round``; ``clients.parquet``
has one row per update (``base_version``, ``staleness``, ``weight``, ``status``);
``rounds.parquet`` one row per server update.
"""

from __future__ import annotations

import math

import simpy

from .plan import ClientWork
from .rounds import Federation
from .seeding import stream

NAN = float("nan")
INF = float("inf")


class AsyncFederation(Federation):
    """The asynchronous server and its clients' loops (see the module docstring).

    Parameters (beyond :class:`cosim.rounds.Federation`'s)
    ----------
    alpha, exponent : float
        FedAsync's mixing weight and staleness exponent a.
    buffer_size : int
        FedBuff's M.
    max_staleness : int or None
        FedBuff drops updates staler than this (None: keeps every update).
    server_lr : float
        FedBuff's server learning rate.
    time_budget_s : float or None
        Simulated seconds after which the run ends (None: only the update count ends it).
    seed : int
    """

    def __init__(self, *, alpha: float = 0.6, exponent: float = 0.5, buffer_size: int = 4,
                 max_staleness: int | None = None, server_lr: float = 1.0, time_budget_s: float | None = None,
                 seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.alpha, self.exponent = alpha, exponent
        self.buffer_size, self.max_staleness, self.server_lr = buffer_size, max_staleness, server_lr
        self.time_budget_s = time_budget_s
        self.seed = seed
        self.plan = None
        self._draws = 0
        self._chains: dict = {}   # client -> its chain's process (cut when the run ends)
        self._buffer: list[tuple] = []
        self._keys = 0

    def _training(self, first_round: int = 0):
        if first_round:
            raise ValueError("an asynchronous run goes on from a checkpoint by running again from time 0 "
                             "(cosim.worklog), never from a round")
        env, sim = self.env, self.sim
        k_all = range(len(self.held))
        self.plan = self.strategy.plan(0, env.now, list(k_all))
        self.arrivals = simpy.Store(env)
        self.finished = env.event()
        self._mark = (env.now, sim.rec.mark())
        env.process(self._server())
        if self.time_budget_s is not None:
            env.process(self._budget())
        concurrency = self.participation.needed(len(self.held))
        self.busy: dict[int, simpy.Process] = {}
        while not self.finished.triggered:
            now = env.now
            idle = [k for k in k_all if k not in self.busy]
            ready = [k for k in idle if sim.availability.is_online(k, now)]
            for k in self._pick(ready, concurrency - len(self.busy)):
                self.busy[k] = env.process(self._update(k))
            self.wake = env.event()
            waits, timer = [self.wake, self.finished], None
            if len(self.busy) < concurrency:
                later = min((sim.availability.online_at(k, now) for k in idle if k not in self.busy), default=INF)
                if later < INF:
                    timer = env.timeout(later - now)
                    waits.append(timer)
                elif not self.busy:
                    self.stopped = f"no client is online after t = {now:.6g} s"
                    break
            yield env.any_of(waits)
            if timer is not None and timer.processed and not (self.wake.triggered or self.finished.triggered):
                # The server waited for a device to come online: nothing else ended then (as between rounds).
                sim.rec.event(round=self.version, client=-1, kind="idle", t_start_s=now, duration_s=env.now - now)
        for chain in self._chains.values():
            if chain.is_alive:
                chain.interrupt("end")
        if self.busy:
            yield env.all_of(list(self.busy.values()))
        for _, k, base, work, outcome, tau in self._buffer:  # taken, never applied
            self._client_row(base, work, self.plan, outcome, False, base_version=base, staleness=tau, status="end")

    def _pick(self, ready: list[int], n: int) -> list[int]:
        if n <= 0 or not ready:
            return []
        if n >= len(ready):
            return ready
        self._draws += 1
        rng = stream(self.seed, "participation", "async", self._draws)
        return sorted(ready[i] for i in rng.choice(len(ready), size=n, replace=False))

    def _budget(self):
        yield self.env.timeout(self.time_budget_s)
        if not self.finished.triggered:
            self.finished.succeed()

    def _update(self, k: int):
        """One update of client ``k``: newest global adapter, local work, upload; the server takes it."""
        env = self.env
        base = self.version
        work = self.work(k)
        self.workload.begin(k)
        chain = self._chains[k] = self.sim.client_process(k, self._async_chain(base, k, work))
        outcome = yield chain
        if outcome.ok and not self.finished.triggered:
            taken = env.event()
            self.arrivals.put((k, base, work, outcome, taken))
            yield taken
        else:
            self._client_row(base, work, self.plan, outcome, False, base_version=base,
                             status="end" if outcome.ok else None)
        del self.busy[k]
        if not self.wake.triggered:
            self.wake.succeed()

    def _async_chain(self, base: int, k: int, work: ClientWork):
        sim = self.sim
        if self.held[k] < base:
            yield from sim.transfer(base, k, -1, "model_download", self.global_nbytes, down=True)
            self.held[k] = base
        yield from self.strategy.local_work(base, k, work, self.plan)
        up = self.strategy.upload(base, k, self.plan)
        work.adapter_upload_s = yield from sim.transfer(base, k, -1, "adapter_upload", up.nbytes, down=False)
        work.uplink_bytes += up.nbytes
        work.adapter_bytes, work.sparsity = up.nbytes, up.sparsity

    # -- the federated server --------------------------------------------------------------------

    def _server(self):
        buffer = self._buffer
        while True:
            k, base, work, outcome, taken = yield self.arrivals.get()
            tau = self.version - base
            if self.finished.triggered:
                self._client_row(base, work, self.plan, outcome, False, base_version=base, staleness=tau,
                                 status="end")
            elif self.mode == "fedasync":
                w = self.alpha * (1.0 + tau) ** -self.exponent
                cost = yield from self.sim.fed_server_step(self.version, self.workload.mix(k, w))
                self._client_row(base, work, self.plan, outcome, True, weight=w, base_version=base, staleness=tau)
                self._new_version(cost.nbytes, [tau])
            elif self.max_staleness is not None and tau > self.max_staleness:
                self._client_row(base, work, self.plan, outcome, False, base_version=base, staleness=tau,
                                 status="stale")
            else:
                self._keys += 1
                key = self._keys  # unique per update
                self.workload.buffer(k, key)
                buffer.append((key, k, base, work, outcome, tau))
                if len(buffer) >= self.buffer_size:
                    weights = {key: self.server_lr / math.sqrt(1.0 + t) / len(buffer)
                               for key, _, _, _, _, t in buffer}
                    cost = yield from self.sim.fed_server_step(self.version, self.workload.apply_buffer(weights))
                    for key, kk, b, wk, oc, t in buffer:
                        self._client_row(b, wk, self.plan, oc, True, weight=weights[key], base_version=b, staleness=t)
                    self._new_version(cost.nbytes, [t for *_, t in buffer])
                    buffer.clear()
            if not taken.triggered:
                taken.succeed()

    def _new_version(self, nbytes: int, staleness: list[float]) -> None:
        """A server update happened: the version moves on, the interval since the last one is a row."""
        t0, mark = self._mark
        r = self.version
        self.version += 1
        self.global_nbytes = nbytes
        self.close(r, t0, mark, self.plan, clients=len(staleness), included=len(staleness),
                   closed_by=self.mode, mean_staleness=sum(staleness) / len(staleness))
        self._mark = (self.env.now, self.sim.rec.mark())
        if self.version >= self.rounds and not self.finished.triggered:
            self.finished.succeed()
        elif self.after_round is not None and not self.finished.triggered:
            self.after_round(r)  # a checkpoint, in the middle of the other clients' work
