"""Synchronous rounds: select, plan, let the clients work, close, aggregate, broadcast.

One round of any strategy:

1. the clients online at the round's start (:mod:`cosim.availability`); if none
   is, the server waits for the first to come online;
2. who takes part (:mod:`cosim.participation`), and the strategy's plan for them
   (uplinks, sparsity, cut and rank);
3. each selected client's chain as its own process: a ``model_download`` of the
   global adapter if it missed the last broadcast, its local work, its adapter
   upload (split learning: the clients take turns instead);
4. the round closes (:mod:`cosim.closing`): at the barrier, a deadline, or when
   the first K have finished; the clients still working are cut;
5. the federated server averages the included uploads (``aggregate``) and the
   global adapter is broadcast to the selected clients still online; with no
   upload included nothing is averaged or sent and every client is put back on
   the global adapter.
"""

from __future__ import annotations

from typing import Callable

from .closing import close_round
from .participation import Participation
from .plan import ClientWork, RoundPlan
from .steps import Outcome, TimedSteps
from .strategies import Strategy
from .workload import Evaluation

NAN = float("nan")
INF = float("inf")


class Federation:
    """The run's loop of synchronous rounds (and the bookkeeping the asynchronous server shares).

    Parameters
    ----------
    sim : TimedSteps
    strategy : Strategy
    participation : Participation
    rounds : int
    mode : {"barrier", "deadline", "over_selection"}
    deadline_s : float or None
        Seconds from a round's start (deadline and, optionally, over-selection).
    evaluate_after : callable(round) -> bool
    on_round : callable(round, now_s), optional
    """

    def __init__(self, *, sim: TimedSteps, strategy: Strategy, participation: Participation, rounds: int,
                 mode: str = "barrier", deadline_s: float | None = None,
                 evaluate_after: Callable[[int], bool] = lambda r: False,
                 on_round: Callable[[int, float], None] | None = None):
        self.sim = sim
        self.strategy = strategy
        self.workload = strategy.workload
        self.participation = participation
        self.rounds = rounds
        self.mode = mode
        self.deadline_s = deadline_s
        self.evaluate_after = evaluate_after
        self.on_round = on_round
        self.evaluations: dict[int, Evaluation] = {}
        self.counts = self.workload.sample_counts()
        n = len(sim.radios)
        self.version = 0                 # the global adapter's version
        self.held = [0] * n              # the version each client holds
        self.global_nbytes = 0           # bytes of the global adapter (known after the first aggregation)
        self.stopped: str | None = None  # why the run ended before its rounds, if it did
        self.fast = None  # a cosim.fastreplay.FastReplay where rounds can be computed in one go
        self.after_round: Callable[[int], None] | None = None  # called at each round's end (checkpoints)

    @property
    def env(self):
        return self.sim.env

    def run(self, first_round: int = 0) -> float:
        """Run the rounds from ``first_round`` (0, or the one after a checkpoint); return the total simulated
        time, s."""
        main = self.env.process(self._training(first_round))
        self.env.run(until=main)
        return self.env.now

    def _training(self, first_round: int = 0):
        for r in range(first_round, self.rounds):
            if not (yield from self._wait_for_online(r)):
                return
            yield from self._round(r)
            if self.after_round is not None:
                self.after_round(r)

    # -- one round -------------------------------------------------------------------------------

    def _wait_for_online(self, r: int):
        """Wait until some client is online; False if none ever is again (the run stops)."""
        avail, now = self.sim.availability, self.env.now
        first = min(avail.online_at(k, now) for k in range(len(self.held)))
        if first == INF:
            self.stopped = f"no client is online after t = {now:.6g} s (round {r} never started)"
            return False
        if first > now:
            self.sim.rec.event(round=r, client=-1, kind="idle", t_start_s=now, duration_s=first - now)
            yield self.env.timeout(first - now)
        return True

    def _round(self, r: int):
        sim, t0 = self.sim, self.env.now
        online = [k for k in range(len(self.held)) if sim.availability.is_online(k, t0)]
        selected = self.participation.select(r, online)
        needed = self.participation.needed(len(online)) if self.mode == "over_selection" else None
        plan = self.strategy.plan(r, t0, selected)
        for k, radio in zip(plan.clients or selected, plan.radios):
            sim.radios[k] = radio
        mark = sim.rec.mark()
        works = {k: self.work(k) for k in selected}
        if self.fast is not None:
            done, nbytes = yield from self.fast.round(r, plan, selected, works)
            outcomes = {k: Outcome(status="done", t_end_s=done[k]) for k in selected}
            included, closed_by = list(selected), "barrier"
        elif self.strategy.sequential:
            outcomes = yield from self._turns(r, selected, works, plan)
            included, closed_by = [k for k in selected if outcomes[k].ok], "barrier"
        else:
            finished: list[int] = []
            procs = {k: sim.client_process(k, self._chain(r, k, works[k], plan), on_done=finished.append)
                     for k in selected}
            deadline = t0 + self.deadline_s if self.deadline_s is not None else None
            closed = yield from close_round(self.env, procs, finished, deadline_at_s=deadline, needed=needed,
                                            mode=self.mode)
            outcomes, included, closed_by = closed.outcomes, closed.included, closed.closed_by
        total = sum(self.counts[k] for k in included)
        weights = {k: float(self.counts[k]) for k in included}
        for k in selected:
            self._client_row(r, works[k], plan, outcomes[k], k in weights,
                             weight=weights[k] / total if k in weights else NAN)
        if self.fast is not None:  # aggregated and broadcast in the same go
            self.version += 1
            self.global_nbytes = nbytes
            for k in selected:
                self.held[k] = self.version
        elif not self.strategy.sequential:
            yield from self._aggregate_and_broadcast(r, weights, selected)
        queue = self.strategy.observe(self.env.now - t0)
        self.close(r, t0, mark, plan, clients=len(selected), included=len(included), closed_by=closed_by,
                   virtual_queue=queue)

    def work(self, k: int) -> ClientWork:
        """A record of client ``k``'s work starting now."""
        return ClientWork(client=k, t_start_s=self.env.now, energy_mark=self.sim.rec.device_energy_j(k))

    def _chain(self, r: int, k: int, work: ClientWork, plan: RoundPlan):
        """Client ``k``'s round: catch up on the global adapter, local work, adapter upload."""
        sim = self.sim
        if self.held[k] < self.version:
            yield from sim.transfer(r, k, -1, "model_download", self.global_nbytes, down=True)
            self.held[k] = self.version
        yield from self.strategy.local_work(r, k, work, plan)
        up = self.strategy.upload(r, k, plan)
        work.adapter_upload_s = yield from sim.transfer(r, k, -1, "adapter_upload", up.nbytes, down=False)
        work.uplink_bytes += up.nbytes
        work.adapter_bytes, work.sparsity = up.nbytes, up.sparsity

    def _turns(self, r: int, selected: list[int], works: dict, plan: RoundPlan):
        """Split learning: each selected client in turn, the client-side adapter handed on after each."""
        outcomes = {}
        for k in selected:
            if not self.sim.availability.is_online(k, self.env.now):
                outcomes[k] = Outcome(status="missed", t_end_s=self.env.now)
                continue
            works[k].t_start_s = self.env.now
            outcomes[k] = yield self.sim.client_process(k, self._chain(r, k, works[k], plan))
            if outcomes[k].ok:
                # The server relays the adapter to the next client: every client now holds it (a copy, no FLOPs).
                cost = self.workload.aggregate({k: 1.0}).run()
                self.version += 1
                self.held[k] = self.version
                self.global_nbytes = cost.nbytes
            else:
                self.workload.aggregate({}).run()  # back on the last handed-on adapter
        return outcomes

    def _aggregate_and_broadcast(self, r: int, weights: dict[int, float], selected: list[int]):
        if not weights:
            self.workload.aggregate({}).run()  # nothing arrived in time: every client back on the global adapter
            return
        cost = yield from self.sim.fed_server_step(r, self.workload.aggregate(weights))
        self.version += 1
        self.global_nbytes = cost.nbytes
        sim, now = self.sim, self.env.now
        receivers = [k for k in selected if sim.availability.is_online(k, now)]
        if sim.multicast is not None and receivers:  # one transmission over the whole band, at the worst rate
            tx = sim.multicast.transfer(8 * cost.nbytes, now, receivers=receivers)
            procs = {k: sim.client_process(k, sim.multicast_share(r, k, cost.nbytes, tx, len(receivers),
                                                                  first=k == receivers[0])) for k in receivers}
        else:
            procs = {k: sim.client_process(k, sim.transfer(r, k, -1, "broadcast", cost.nbytes, down=True))
                     for k in receivers}
        if procs:
            yield self.env.all_of(list(procs.values()))
        for k, proc in procs.items():
            if proc.value.ok:
                self.held[k] = self.version

    # -- rows ------------------------------------------------------------------------------------

    def _client_row(self, r: int, work: ClientWork, plan: RoundPlan, outcome: Outcome, included: bool, *,
                    weight: float = NAN, base_version: int | None = None, staleness: float = NAN,
                    status: str | None = None) -> None:
        k = work.client
        radio = self.sim.radios[k]
        n_sub = len(radio.subchannels)
        if status is None:
            status = "aggregated" if included else ("late" if outcome.ok else outcome.status)
        total_j, transmit_j = self.sim.rec.device_energy_j(k)
        energy_j, transmit_j = total_j - work.energy_mark[0], transmit_j - work.energy_mark[1]
        self.sim.rec.client(
            round=r, client=k, status=status, latency_s=outcome.t_end_s - work.t_start_s, compute_s=work.compute_s,
            adapter_upload_s=work.adapter_upload_s, uplink_bytes=work.uplink_bytes,
            adapter_bytes=work.adapter_bytes, sparsity=work.sparsity, n_subchannels=n_sub,
            bandwidth_share=n_sub / self.sim.n_subchannels, virtual_queue=plan.queue_s,
            base_version=self.version if base_version is None else base_version, staleness=staleness,
            weight=weight, energy_j=energy_j, transmit_energy_j=transmit_j)

    def close(self, r: int, t0: float, mark, plan: RoundPlan | None, **extra):
        """Evaluate if asked, then write the round's row (and call the progress callback).

        ``mark``: the recorder's :class:`cosim.trace.Mark` at the round's start.
        """
        sim = self.sim
        totals = sim.rec.since(mark, self.strategy.loss_kind)
        sent = [c for c in sim.rec.client_rows[mark.n_clients:] if c["adapter_bytes"] > 0]
        ev = self.workload.evaluate() if self.evaluate_after(r) else None
        if ev is not None:
            self.evaluations[r] = ev
        sim.rec.round(
            round=r, t_start_s=t0, t_end_s=self.env.now, duration_s=self.env.now - t0, **totals,
            accuracy=ev.accuracy if ev else NAN, eval_loss=ev.loss if ev else NAN, version=self.version,
            predicted_s=plan.predicted_s if plan else NAN, cut=plan.cut if plan else None,
            rank=plan.rank if plan else getattr(self.workload, "rank", None),
            sparsity=sum(c["sparsity"] for c in sent) / len(sent) if sent else 0.0,
            **extra,
        )
        if self.on_round:
            self.on_round(r, self.env.now)
