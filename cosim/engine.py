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

from typing import Callable, Sequence

import simpy

from .radio import ClientRadio
from .steps import TimedSteps
from .trace import Recorder
from .workload import SplitWorkload


class SplitFedSimulation(TimedSteps):
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
    allocate : callable(round, now_s, radios) -> (radios, predicted_s, cut, rank), optional
        The allocation policy, asked at the start of each round: returns the
        clients' radios with their new uplinks, the round delay it predicts, and
        the cut and rank of the round; where they differ from the workload's
        (``workload.cut``, ``workload.rank``), ``workload.configure(cut=, rank=)``
        is called before the round's first step.
    n_subchannels : int, optional
        Uplink subchannels in the cell (see :class:`cosim.steps.TimedSteps`).
    """

    def __init__(self, *, workload: SplitWorkload, radios: Sequence[ClientRadio],
                 client_flops_per_s: Sequence[float], server_flops_per_s: float,
                 fed_server_flops_per_s: float, server_slots: int, rounds: int, local_iterations: int,
                 recorder: Recorder, evaluate_after: Callable[[int], bool] = lambda r: False,
                 on_round: Callable[[int, float], None] | None = None,
                 allocate: Callable[[int, float, list], tuple[list, float, int, int]] | None = None,
                 n_subchannels: int | None = None):
        super().__init__(workload=workload, radios=radios, client_flops_per_s=client_flops_per_s,
                         fed_server_flops_per_s=fed_server_flops_per_s, rounds=rounds,
                         local_iterations=local_iterations, recorder=recorder, evaluate_after=evaluate_after,
                         on_round=on_round, n_subchannels=n_subchannels)
        self.server_flops_per_s = server_flops_per_s
        self.server = simpy.Resource(self.env, capacity=server_slots)
        self.allocate = allocate

    # -- processes -------------------------------------------------------------------------

    def _round(self, r: int):
        t0 = self.env.now
        predicted = float("nan")
        cut, rank = getattr(self.workload, "cut", None), getattr(self.workload, "rank", None)
        if self.allocate is not None:
            # The policy decides this round's uplink from what it knows at the round's start.
            self.radios, predicted, new_cut, new_rank = self.allocate(r, t0, self.radios)
            if (cut is not None and new_cut != cut) or (rank is not None and new_rank != rank):
                # A new cut or rank takes effect before the round's first step.
                self.workload.configure(cut=new_cut, rank=new_rank)
            cut, rank = new_cut, new_rank
        first_event = len(self.rec.event_rows)
        yield self.env.all_of([self.env.process(self._client(r, k)) for k in range(len(self.radios))])

        counts = self.workload.sample_counts()
        weights = {k: float(counts[k]) for k in range(len(self.radios))}
        yield from self._aggregate(r, lambda: self.workload.aggregate(weights), self.fed_server_flops_per_s)
        self._close_round(r, t0, first_event, evaluate=self.workload.evaluate, loss_kind="server_step",
                          predicted_s=predicted, cut=cut, rank=rank)

    def _client(self, r: int, k: int):
        t0, compute_s, sent = self.env.now, 0.0, 0
        for i in range(self.local_iterations):
            start = self.env.now
            msg = yield from self._compute(r, k, i, "client_forward", self.workload.client_forward,
                                           self.client_flops_per_s[k])
            compute_s += self.env.now - start
            yield from self._transfer(r, k, i, "uplink", msg.nbytes, down=False)
            sent += msg.nbytes

            queued = self.env.now
            with self.server.request() as slot:
                yield slot
                if self.env.now > queued:
                    self.rec.event(round=r, iteration=i, client=k, kind="server_queue",
                                   t_start_s=queued, duration_s=self.env.now - queued)
                reply = yield from self._compute(r, k, i, "server_step", self.workload.server_step,
                                                 self.server_flops_per_s)

            yield from self._transfer(r, k, i, "downlink", reply.nbytes, down=True)
            start = self.env.now
            yield from self._compute(r, k, i, "client_backward", self.workload.client_backward,
                                     self.client_flops_per_s[k])
            compute_s += self.env.now - start
        upload = self.workload.adapter_upload(k)
        upload_s = yield from self._transfer(r, k, -1, "adapter_upload", upload.nbytes, down=False)
        n_sub = len(self.radios[k].subchannels)
        self.rec.client(round=r, client=k, latency_s=self.env.now - t0, compute_s=compute_s, upload_s=upload_s,
                        uplink_bytes=sent + upload.nbytes, adapter_bytes=upload.nbytes, n_subchannels=n_sub,
                        bandwidth_share=n_sub / self.n_subchannels)
