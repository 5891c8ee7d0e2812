"""Federated LoRA without a split: ``fedlora``, ``soft``, ``topk``, ``randomk``, ``tsfa``.

Each client runs its local steps on its own device (``local_step`` events
lasting the step's measured FLOPs at the device's FLOP/s), then uploads its
adapter, whole or sparsified (:mod:`cosim.workloads.fed_lora`). ``tsfa``
decides each round's bandwidth shares and sparsities online from what the base
station knows at the round's start (:class:`cosim.tsfa.TsfaPolicy`) and learns
the latency the round really had; its rank comes from the offline stage.
"""

from __future__ import annotations

from typing import Callable

from ..plan import ClientWork, RoundPlan
from ..scenario import Scenario
from ..workload import Upload
from .base import Strategy, equal_plan

#: Strategies that upload with the scenario's fixed sparsity (tsfa chooses its own each round).
FIXED_SPARSITY = ("soft", "topk", "randomk")


class FedLoRAStrategy(Strategy):
    """Dense FedLoRA (the others differ in the upload, which the workload makes, and in the plan)."""

    name = "fedlora"
    loss_kind = "local_step"

    def __init__(self, *, sc: Scenario, workload, policy=None):
        super().__init__(sc=sc, workload=workload)
        self.policy = policy
        self.sparsity = sc.strategy.sparsity if sc.strategy.name in FIXED_SPARSITY else 0.0

    @classmethod
    def build_workload(cls, sc: Scenario, *, radios, client_flops_per_s, stage: Callable[[str], None]):
        from ..workloads.fed_lora import FedLoRAWorkload, measure_ranks

        rank = None
        if sc.strategy.name == "tsfa":
            rank = sc.tsfa.rank
            if rank is None:
                from ..tsfa import offline_rank

                stage("TSFA offline stage: measuring candidate ranks")
                measured = measure_ranks(sc, sc.tsfa.rank_candidates)
                rank = offline_rank(sc, radios, measured, client_flops_per_s)
        stage("loading model and data")
        return FedLoRAWorkload.from_scenario(sc, rank=rank)

    @classmethod
    def create(cls, sc: Scenario, workload) -> "FedLoRAStrategy":
        return cls(sc=sc, workload=workload)

    def plan(self, round_index: int, now_s: float, selected: list[int]) -> RoundPlan:
        plan = equal_plan(self.sc, self.sim.home_radios, selected, self.sparsity)
        return RoundPlan(radios=plan.radios, sparsity=plan.sparsity, clients=plan.clients,
                         rank=getattr(self.workload, "rank", None))

    def local_work(self, round_index: int, k: int, work: ClientWork, plan: RoundPlan):
        sim, wl = self.sim, self.workload
        start = sim.env.now
        for i in range(self.sc.training.local_iterations):
            yield from sim.compute(round_index, k, i, "local_step", wl.local_step(k), sim.client_flops_per_s[k])
        work.compute_s = sim.env.now - start

    def upload(self, round_index: int, k: int, plan: RoundPlan) -> Upload:
        return self.workload.upload(k, plan.sparsity[plan.index(k)])


class SoftStrategy(FedLoRAStrategy):
    name = "soft"


class TopKStrategy(FedLoRAStrategy):
    name = "topk"


class RandomKStrategy(FedLoRAStrategy):
    name = "randomk"


class TsfaStrategy(FedLoRAStrategy):
    """SOFT with TSFA's online stage deciding each round's bandwidth shares and sparsities."""

    name = "tsfa"

    def attach(self, sim) -> None:
        from ..tsfa import TsfaPolicy

        super().attach(sim)
        wl = self.workload
        self.policy = TsfaPolicy(self.sc, step_flops=wl.step_flops(), dense_nbytes=wl.dense_nbytes(),
                                 client_flops_per_s=sim.client_flops_per_s, weights=wl.sample_counts(),
                                 rank=wl.rank)

    def plan(self, round_index: int, now_s: float, selected: list[int]) -> RoundPlan:
        radios = [self.sim.home_radios[k] for k in selected]
        plan = self.policy.plan(round_index, now_s, radios, selected)
        return RoundPlan(radios=plan.radios, sparsity=plan.sparsity, clients=list(selected),
                         predicted_s=plan.predicted_s, queue_s=plan.queue_s, rank=self.workload.rank)

    def observe(self, latency_s: float) -> float:
        return self.policy.observe(latency_s)

    def summary(self) -> dict:
        return self.policy.summary()

    def state_dict(self) -> dict:
        return {"queue_history": list(self.policy.queue.history), "decisions": list(self.policy.decisions)}

    def load_state_dict(self, state: dict) -> None:
        self.policy.queue._backlog = [float(q) for q in state["queue_history"]]
        self.policy.decisions = list(state["decisions"])
