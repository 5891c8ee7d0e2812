"""The SimPy processes of federated LoRA without a split (FedLoRA, SOFT, top-k, random-k, TSFA).

A round: an optional policy (TSFA's online stage) decides each client's uplink
subchannels and sparsification ratio from what the base station knows at the
round's start; the clients run their local steps in parallel, each on its own
device (``local_step`` events lasting the step's measured FLOPs at the device's
FLOP/s); each uploads its (sparsified) adapter over its uplink; the federated
server merges the uploads and broadcasts the global adapter; a barrier closes
the round, and the policy learns the latency the round really had.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from .radio import ClientRadio
from .steps import TimedSteps
from .trace import Recorder
from .workload import FedWorkload

NAN = float("nan")


@dataclass(frozen=True)
class RoundPlan:
    """A policy's decision for one round."""

    radios: list
    sparsity: list[float]
    predicted_s: float = NAN
    queue_s: float = NAN  # the virtual queue the decision saw


class RoundPolicy(Protocol):
    def plan(self, round_index: int, now_s: float, radios: list) -> RoundPlan: ...

    def observe(self, latency_s: float) -> float:
        """The round's realised latency; returns the queue after it."""


class FedLoRASimulation(TimedSteps):
    """One run of federated LoRA: the clock, the clients' local training, uploads, merge and broadcast.

    Parameters
    ----------
    workload : FedWorkload
    radios : sequence of ClientRadio
    client_flops_per_s : sequence of float
        Effective compute of each device, FLOP/s.
    fed_server_flops_per_s : float
        The server that merges the adapters, FLOP/s.
    rounds, local_iterations : int
    sparsity : float
        The fixed sparsification ratio of every upload (without a policy).
    recorder, evaluate_after, on_round, n_subchannels
        As for :class:`cosim.steps.TimedSteps`.
    policy : RoundPolicy, optional
        Decides subchannels and per-client sparsity each round (TSFA's online stage).
    """

    def __init__(self, *, workload: FedWorkload, radios: Sequence[ClientRadio], client_flops_per_s: Sequence[float],
                 fed_server_flops_per_s: float, rounds: int, local_iterations: int, sparsity: float,
                 recorder: Recorder, evaluate_after: Callable[[int], bool] = lambda r: False,
                 on_round: Callable[[int, float], None] | None = None, n_subchannels: int | None = None,
                 policy: RoundPolicy | None = None):
        super().__init__(workload=workload, radios=radios, client_flops_per_s=client_flops_per_s,
                         fed_server_flops_per_s=fed_server_flops_per_s, rounds=rounds,
                         local_iterations=local_iterations, recorder=recorder, evaluate_after=evaluate_after,
                         on_round=on_round, n_subchannels=n_subchannels)
        self.sparsity = sparsity
        self.policy = policy
        self.plans: list[RoundPlan] = []

    def _round(self, r: int):
        t0 = self.env.now
        if self.policy is not None:
            plan = self.policy.plan(r, t0, self.radios)
            self.radios = list(plan.radios)
        else:
            plan = RoundPlan(radios=self.radios, sparsity=[self.sparsity] * len(self.radios))
        self.plans.append(plan)
        first_event, first_client = len(self.rec.event_rows), len(self.rec.client_rows)
        yield self.env.all_of([self.env.process(self._client(r, k, plan)) for k in range(len(self.radios))])

        counts = self.workload.sample_counts()
        weights = {k: float(counts[k]) for k in range(len(self.radios))}
        yield from self._aggregate(r, lambda: self.workload.aggregate(weights), self.fed_server_flops_per_s)
        queue = self.policy.observe(self.env.now - t0) if self.policy is not None else NAN
        sent = self.rec.client_rows[first_client:]
        self._close_round(r, t0, first_event, evaluate=self.workload.evaluate, loss_kind="local_step",
                          predicted_s=plan.predicted_s, virtual_queue=queue,
                          sparsity=sum(c["sparsity"] for c in sent) / len(sent),
                          rank=getattr(self.workload, "rank", None))

    def _client(self, r: int, k: int, plan: RoundPlan):
        t0 = self.env.now
        for i in range(self.local_iterations):
            yield from self._compute(r, k, i, "local_step", self.workload.local_step, self.client_flops_per_s[k])
        compute_s = self.env.now - t0
        up = self.workload.upload(k, plan.sparsity[k])
        upload_s = yield from self._transfer(r, k, -1, "adapter_upload", up.nbytes, down=False)
        n_sub = len(self.radios[k].subchannels)
        self.rec.client(round=r, client=k, latency_s=self.env.now - t0, compute_s=compute_s, upload_s=upload_s,
                        uplink_bytes=up.nbytes, adapter_bytes=up.nbytes, sparsity=up.sparsity,
                        n_subchannels=n_sub, bandwidth_share=n_sub / self.n_subchannels, virtual_queue=plan.queue_s)
