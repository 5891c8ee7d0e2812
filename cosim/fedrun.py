"""Setting up a run of federated LoRA without a split: the workload (with TSFA's offline rank) and the clock."""

from __future__ import annotations

from typing import Callable

from .fedlora_engine import FedLoRASimulation
from .scenario import Scenario

# Strategies that upload with the scenario's fixed sparsity (tsfa chooses its own each round).
FIXED_SPARSITY = ("soft", "topk", "randomk")


def fed_simulation(sc: Scenario, timing: dict, *, workload=None, stage: Callable[[str], None] = lambda s: None):
    """The simulation of ``sc`` (strategy fedlora, soft, topk, randomk or tsfa), its workload, and the
    held-out evaluation before training.

    ``timing``: the keyword arguments every engine takes (radios, recorder, clients' FLOP/s, rounds...).
    With strategy tsfa and ``tsfa.rank: null`` the rank is chosen first (the offline stage), from
    step FLOPs and adapter bytes measured on the real model at each candidate rank.
    """
    if workload is None:
        from .workloads.fed_lora import FedLoRAWorkload, measure_ranks

        rank = None
        if sc.strategy.name == "tsfa":
            rank = sc.tsfa.rank
            if rank is None:
                from .tsfa import offline_rank

                stage("TSFA offline stage: measuring candidate ranks")
                measured = measure_ranks(sc, sc.tsfa.rank_candidates)
                rank = offline_rank(sc, timing["radios"], measured, timing["client_flops_per_s"])
        stage("loading model and data")
        workload = FedLoRAWorkload.from_scenario(sc, rank=rank)
    stage("evaluating before training")
    before = workload.evaluate()
    policy = None
    if sc.strategy.name == "tsfa":
        from .tsfa import TsfaPolicy

        counts = workload.sample_counts()
        policy = TsfaPolicy(sc, step_flops=workload.step_flops(), dense_nbytes=workload.dense_nbytes(),
                            client_flops_per_s=timing["client_flops_per_s"], weights=counts, rank=workload.rank)
    sparsity = sc.strategy.sparsity if sc.strategy.name in FIXED_SPARSITY else 0.0
    sim = FedLoRASimulation(workload=workload, sparsity=sparsity, policy=policy, **timing)
    return sim, workload, before
