"""The SimPy processes of split federated LoRA (the FedsLLM round shape).

Clients run their local iterations in parallel; each iteration is
client forward -> uplink of the cut activations -> main server step (a shared
resource: clients queue, and the wait is an event of its own) -> downlink of the
activation gradient -> client backward. Then each client uploads its client-side
adapter to the federated server, the adapters are averaged, the average is
broadcast, and a barrier closes the round.

The real work runs at the start of the event it times: the workload does the
step and returns its measured FLOPs and payload bytes, and the event lasts
``flops / flops_per_s`` or, for a transfer, the time the link needs for the
bytes under the fading it has at that moment.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import simpy

from .radio import ClientRadio
from .trace import Recorder
from .workload import Evaluation, SplitWorkload, StepCost


class SplitFedSimulation:
    """One run's clock and processes.

    Parameters
    ----------
    workload : SplitWorkload
        Does (or replays) each step and reports its cost.
    radios : sequence of ClientRadio
        Each client's uplink and downlink.
    client_flops_per_s : sequence of float
        Effective compute of each device, FLOP/s.
    server_flops_per_s, fed_server_flops_per_s : float
        Effective compute of the main server and of the federated server, FLOP/s.
    server_slots : int
        Client steps the main server runs at once; the others wait in FIFO order.
    rounds, local_iterations : int
        Federated rounds and split steps per client per round.
    recorder : Recorder
        Receives one row per event and per round.
    evaluate_after : callable(round) -> bool
        Whether to evaluate held-out accuracy after a round (not on the simulated clock).
    on_round : callable(round, now_s), optional
        Progress callback.
    allocate : callable(round, now_s, radios) -> (radios, predicted_s), optional
        The allocation policy, asked at the start of each round: returns the
        clients' radios with their new uplinks and the round delay it predicts.
    """

    def __init__(self, *, workload: SplitWorkload, radios: Sequence[ClientRadio],
                 client_flops_per_s: Sequence[float], server_flops_per_s: float,
                 fed_server_flops_per_s: float, server_slots: int, rounds: int, local_iterations: int,
                 recorder: Recorder, evaluate_after: Callable[[int], bool] = lambda r: False,
                 on_round: Callable[[int, float], None] | None = None,
                 allocate: Callable[[int, float, list], tuple[list, float]] | None = None):
        self.env = simpy.Environment()
        self.workload = workload
        self.radios = list(radios)
        self.client_flops_per_s = list(client_flops_per_s)
        self.server_flops_per_s = server_flops_per_s
        self.fed_server_flops_per_s = fed_server_flops_per_s
        self.server = simpy.Resource(self.env, capacity=server_slots)
        self.rounds = rounds
        self.local_iterations = local_iterations
        self.rec = recorder
        self.evaluate_after = evaluate_after
        self.on_round = on_round
        self.evaluations: dict[int, Evaluation] = {}
        self.allocate = allocate

    def run(self) -> float:
        """Run every round; return the total simulated time, s."""
        self.env.process(self._training())
        self.env.run()
        return self.env.now

    # -- processes -------------------------------------------------------------------------

    def _training(self):
        for r in range(self.rounds):
            yield from self._round(r)

    def _round(self, r: int):
        t0 = self.env.now
        predicted = float("nan")
        if self.allocate is not None:
            # The policy decides this round's uplink from what it knows at the round's start.
            self.radios, predicted = self.allocate(r, t0, self.radios)
        first_event = len(self.rec.event_rows)
        yield self.env.all_of([self.env.process(self._client(r, k)) for k in range(len(self.radios))])

        counts = self.workload.sample_counts()
        start, wall = self.env.now, time.perf_counter()
        cost = self.workload.aggregate({k: float(counts[k]) for k in range(len(self.radios))})
        wall = time.perf_counter() - wall
        duration = cost.flops / self.fed_server_flops_per_s
        yield self.env.timeout(duration)
        self.rec.event(round=r, client=-1, kind="aggregate", t_start_s=start, duration_s=duration,
                       flops=cost.flops, nbytes=cost.nbytes, wall_s=wall)
        yield self.env.all_of([self.env.process(self._transfer(r, k, -1, "broadcast", cost.nbytes, down=True))
                               for k in range(len(self.radios))])

        rows = self.rec.event_rows[first_event:]
        losses = [e["loss"] for e in rows if e["kind"] == "server_step"]
        ev = self.workload.evaluate() if self.evaluate_after(r) else None
        if ev is not None:
            self.evaluations[r] = ev
        self.rec.round(
            round=r, t_start_s=t0, t_end_s=self.env.now, duration_s=self.env.now - t0,
            train_loss=sum(losses) / len(losses) if losses else float("nan"),
            uplink_bytes=sum(e["bytes"] for e in rows if e["kind"] in ("uplink", "adapter_upload")),
            downlink_bytes=sum(e["bytes"] for e in rows if e["kind"] in ("downlink", "broadcast")),
            clients=len(self.radios), predicted_s=predicted,
            accuracy=ev.accuracy if ev else float("nan"), eval_loss=ev.loss if ev else float("nan"),
        )
        if self.on_round:
            self.on_round(r, self.env.now)

    def _client(self, r: int, k: int):
        for i in range(self.local_iterations):
            msg = yield from self._compute(r, k, i, "client_forward", self.workload.client_forward,
                                           self.client_flops_per_s[k])
            yield from self._transfer(r, k, i, "uplink", msg.nbytes, down=False)

            queued = self.env.now
            with self.server.request() as slot:
                yield slot
                if self.env.now > queued:
                    self.rec.event(round=r, iteration=i, client=k, kind="server_queue",
                                   t_start_s=queued, duration_s=self.env.now - queued)
                reply = yield from self._compute(r, k, i, "server_step", self.workload.server_step,
                                                 self.server_flops_per_s)

            yield from self._transfer(r, k, i, "downlink", reply.nbytes, down=True)
            yield from self._compute(r, k, i, "client_backward", self.workload.client_backward,
                                     self.client_flops_per_s[k])
        upload = self.workload.adapter_upload(k)
        yield from self._transfer(r, k, -1, "adapter_upload", upload.nbytes, down=False)

    def _compute(self, r: int, k: int, i: int, kind: str, step: Callable[[int], StepCost],
                 flops_per_s: float):
        start, wall = self.env.now, time.perf_counter()
        cost = step(k)
        wall = time.perf_counter() - wall
        duration = cost.flops / flops_per_s
        yield self.env.timeout(duration)
        self.rec.event(round=r, iteration=i, client=k, kind=kind, t_start_s=start, duration_s=duration,
                       flops=cost.flops, nbytes=cost.nbytes, loss=cost.loss, wall_s=wall)
        return cost

    def _transfer(self, r: int, k: int, i: int, kind: str, nbytes: int, *, down: bool):
        radio = self.radios[k]
        link = radio.downlink if down else radio.uplink
        start = self.env.now
        tx = link.transfer(8 * nbytes, start)
        yield self.env.timeout(tx.duration_s)
        self.rec.event(round=r, iteration=i, client=k, kind=kind, t_start_s=start, duration_s=tx.duration_s,
                       nbytes=nbytes, rate_bps=tx.mean_rate_bps if nbytes else float("nan"),
                       snr_db=tx.snr_db, n_subchannels=len(link.subchannels),
                       power_w=radio.downlink_power_w if down else radio.uplink_power_w)
