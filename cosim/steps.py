"""The timed steps every strategy's processes are made of: a compute step and a transfer.

A compute step runs the real work at the start of its event (the workload does
the step and returns the FLOPs it measured) and lasts ``flops / flops_per_s``;
a transfer lasts the time the client's link needs for the bytes under the
fading it has at that moment. Both write one event row. The round shapes
(``cosim.engine`` for split learning, ``cosim.fedlora_engine`` for federated
LoRA) are SimPy processes built from these two.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import simpy

from .radio import ClientRadio
from .trace import Recorder
from .workload import Evaluation, StepCost


class TimedSteps:
    """One run's clock, the clients' radios and the recorder, with the two kinds of timed step.

    Parameters
    ----------
    workload
        Does (or replays) each step and reports its cost (``cosim.workload``).
    radios : sequence of ClientRadio
        Each client's uplink and downlink (an allocation policy may replace them per round).
    client_flops_per_s : sequence of float
        Effective compute of each device, FLOP/s.
    fed_server_flops_per_s : float
        The federated server that averages the adapters, FLOP/s.
    rounds, local_iterations : int
        Federated rounds, and local steps per client per round.
    recorder : Recorder
        Receives one row per event, per round and per round and client.
    evaluate_after : callable(round) -> bool
        Whether to evaluate held-out accuracy after a round (not on the simulated clock).
    on_round : callable(round, now_s), optional
        Progress callback.
    n_subchannels : int, optional
        Uplink subchannels in the cell (the bandwidth shares' denominator); default:
        all the subchannels the radios hold at the start.
    """

    def __init__(self, *, workload, radios: Sequence[ClientRadio], client_flops_per_s: Sequence[float],
                 fed_server_flops_per_s: float, rounds: int, local_iterations: int, recorder: Recorder,
                 evaluate_after: Callable[[int], bool] = lambda r: False,
                 on_round: Callable[[int, float], None] | None = None, n_subchannels: int | None = None):
        self.env = simpy.Environment()
        self.workload = workload
        self.client_flops_per_s = list(client_flops_per_s)
        self.fed_server_flops_per_s = fed_server_flops_per_s
        self.rounds = rounds
        self.local_iterations = local_iterations
        self.radios = list(radios)
        self.n_subchannels = n_subchannels or sum(len(radio.subchannels) for radio in self.radios)
        self.rec = recorder
        self.evaluate_after = evaluate_after
        self.on_round = on_round
        self.evaluations: dict[int, Evaluation] = {}

    def run(self) -> float:
        """Run every round; return the total simulated time, s."""
        self.env.process(self._training())
        self.env.run()
        return self.env.now

    def _training(self):
        for r in range(self.rounds):
            yield from self._round(r)

    def _round(self, r: int):  # pragma: no cover - each round shape defines it
        raise NotImplementedError

    def _compute(self, r: int, k: int, i: int, kind: str, step: Callable[[int], StepCost],
                 flops_per_s: float):
        """Do ``step(k)`` now, then let the event last its measured FLOPs at ``flops_per_s``."""
        start, wall = self.env.now, time.perf_counter()
        cost = step(k)
        wall = time.perf_counter() - wall
        duration = cost.flops / flops_per_s
        yield self.env.timeout(duration)
        self.rec.event(round=r, iteration=i, client=k, kind=kind, t_start_s=start, duration_s=duration,
                       flops=cost.flops, nbytes=cost.nbytes, loss=cost.loss, wall_s=wall)
        return cost

    def _transfer(self, r: int, k: int, i: int, kind: str, nbytes: int, *, down: bool):
        """Send ``nbytes`` over client ``k``'s downlink or uplink, starting now."""
        radio = self.radios[k]
        link = radio.downlink if down else radio.uplink
        start = self.env.now
        tx = link.transfer(8 * nbytes, start)
        yield self.env.timeout(tx.duration_s)
        self.rec.event(round=r, iteration=i, client=k, kind=kind, t_start_s=start, duration_s=tx.duration_s,
                       nbytes=nbytes, rate_bps=tx.mean_rate_bps if nbytes else float("nan"),
                       snr_db=tx.snr_db, n_subchannels=len(link.subchannels),
                       power_w=radio.downlink_power_w if down else radio.uplink_power_w)
        return tx.duration_s

    def _aggregate(self, r: int, aggregate: Callable[[], StepCost], flops_per_s: float):
        """The federated server's averaging, then the broadcast of the result to every client."""
        start, wall = self.env.now, time.perf_counter()
        cost = aggregate()
        wall = time.perf_counter() - wall
        duration = cost.flops / flops_per_s
        yield self.env.timeout(duration)
        self.rec.event(round=r, client=-1, kind="aggregate", t_start_s=start, duration_s=duration,
                       flops=cost.flops, nbytes=cost.nbytes, wall_s=wall)
        yield self.env.all_of([self.env.process(self._transfer(r, k, -1, "broadcast", cost.nbytes, down=True))
                               for k in range(len(self.radios))])

    def _close_round(self, r: int, t0: float, first_event: int, *, evaluate: Callable[[], Evaluation],
                     loss_kind: str, **extra) -> None:
        """Evaluate if asked, then write the round's row (and call the progress callback)."""
        rows = self.rec.event_rows[first_event:]
        losses = [e["loss"] for e in rows if e["kind"] == loss_kind]
        ev = evaluate() if self.evaluate_after(r) else None
        if ev is not None:
            self.evaluations[r] = ev
        self.rec.round(
            round=r, t_start_s=t0, t_end_s=self.env.now, duration_s=self.env.now - t0,
            train_loss=sum(losses) / len(losses) if losses else float("nan"),
            uplink_bytes=sum(e["bytes"] for e in rows if e["kind"] in ("uplink", "adapter_upload")),
            downlink_bytes=sum(e["bytes"] for e in rows if e["kind"] in ("downlink", "broadcast")),
            clients=len(self.radios),
            accuracy=ev.accuracy if ev else float("nan"), eval_loss=ev.loss if ev else float("nan"),
            **extra,
        )
        if self.on_round:
            self.on_round(r, self.env.now)
