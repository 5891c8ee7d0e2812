"""Split learning strategies: SFL-V1 (``split``), SFL-V2 (``sfl_v2``) and sequential split learning (``sl``).

A client's local iteration (FedsLLM, the split-learning step of SplitFed):
client forward -> uplink of the cut activations -> main-server step (a shared
resource: clients queue, the wait is an event of its own) -> downlink of the
activation gradient -> client backward. After its iterations the client
uploads its client-side adapter to the federated server.

- ``split`` (SFL-V1): the main server keeps one server-side adapter per client;
  the federated server averages the client-side adapters and the main server
  the server-side copies, over the same clients.
- ``sfl_v2``: one shared server-side adapter and one optimizer state, updated
  by each server step in the order the steps complete on the main server,
  which the simulation decides; only client-side adapters are averaged.
- ``sl`` (vanilla split learning): one client at a time; the client-side
  adapter goes from client to client through the server (the client's
  ``adapter_upload``, the next client's ``model_download``), no averaging; the
  server-side adapter is shared.
"""

from __future__ import annotations

from typing import Callable

from ..plan import ClientWork, RoundPlan
from ..scenario import Scenario
from ..workload import Upload
from .base import Strategy, equal_plan


class SplitStrategy(Strategy):
    """SFL-V1: per-client server-side adapters, both sides averaged (FedsLLM)."""

    name = "split"
    loss_kind = "server_step"

    def __init__(self, *, sc: Scenario, workload, allocator=None):
        super().__init__(sc=sc, workload=workload)
        self.allocator = allocator

    @classmethod
    def build_workload(cls, sc: Scenario, *, radios, client_flops_per_s, stage: Callable[[str], None]):
        stage("loading model and data")
        if sc.workload.kind == "replay":
            from ..workloads.replay import ReplayWorkload

            return ReplayWorkload.from_scenario(sc)
        from ..workloads.reconfigurable import ReconfigurableSplitLoRAWorkload

        return ReconfigurableSplitLoRAWorkload.from_scenario(sc)

    @classmethod
    def create(cls, sc: Scenario, workload) -> "SplitStrategy":
        allocator = None
        if sc.allocation.policy != "equal":
            from ..allocation import SolverAllocator  # imports solver

            allocator = SolverAllocator.for_workload(sc, workload)
        return cls(sc=sc, workload=workload, allocator=allocator)

    def plan(self, round_index: int, now_s: float, selected: list[int]) -> RoundPlan:
        wl = self.workload
        cut, rank = getattr(wl, "cut", None), getattr(wl, "rank", None)
        if self.allocator is None:
            plan = equal_plan(self.sc, self.sim.home_radios, selected)
            return RoundPlan(radios=plan.radios, sparsity=plan.sparsity, clients=plan.clients, cut=cut, rank=rank)
        # The policy decides this round's uplinks (every client: validation asks for full participation).
        radios, predicted, new_cut, new_rank = self.allocator(round_index, now_s, self.sim.radios)
        if (cut is not None and new_cut != cut) or (rank is not None and new_rank != rank):
            wl.configure(cut=new_cut, rank=new_rank)  # before the round's first step
        return RoundPlan(radios=radios, sparsity=[0.0] * len(radios), clients=list(selected), predicted_s=predicted,
                         cut=new_cut, rank=new_rank)

    def state_dict(self) -> dict:
        return {"decisions": list(self.allocator.decisions) if self.allocator is not None else []}

    def load_state_dict(self, state: dict) -> None:
        if self.allocator is not None:
            self.allocator.decisions = list(state["decisions"])

    def local_work(self, round_index: int, k: int, work: ClientWork, plan: RoundPlan):
        sim, wl, r = self.sim, self.workload, round_index
        flops_per_s = sim.client_flops_per_s[k]
        for i in range(self.sc.training.local_iterations):
            start = sim.env.now
            msg = yield from sim.compute(r, k, i, "client_forward", wl.client_forward(k), flops_per_s)
            work.compute_s += sim.env.now - start
            yield from sim.transfer(r, k, i, "uplink", msg.nbytes, down=False)
            work.uplink_bytes += msg.nbytes
            reply = yield from sim.server_step(r, k, i, wl.server_step(k))
            yield from sim.transfer(r, k, i, "downlink", reply.nbytes, down=True)
            start = sim.env.now
            yield from sim.compute(r, k, i, "client_backward", wl.client_backward(k), flops_per_s)
            work.compute_s += sim.env.now - start

    def upload(self, round_index: int, k: int, plan: RoundPlan) -> Upload:
        return Upload(nbytes=self.workload.adapter_upload(k).nbytes)


class SflV2Strategy(SplitStrategy):
    """SFL-V2: one shared server-side adapter, updated in the order the server steps complete."""

    name = "sfl_v2"


class SequentialSplitStrategy(SplitStrategy):
    """Vanilla split learning: the selected clients take turns, handing the client-side adapter on."""

    name = "sl"
    sequential = True
