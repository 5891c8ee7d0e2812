"""Allocation policies inside a run: the joint problem re-solved on the channel the run has.

At the start of a round (every round, or once) the policy builds the problem of
``solver`` from the clients' radios as the base station would know them
(``allocation.knowledge``) and the workload's measured costs, solves it, and
gives each client its new uplink (subchannels, power) and the run its cut and
rank. ``equal``, ``random`` and ``resources_only`` keep the scenario's cut and
rank; ``optimizer`` and ``split_rank_only`` choose them from the cost table of
``workload.profile`` (every cut x rank measured), minimising
rounds(rank) x round delay with rounds(rank) from the profile's pilot curves
(:mod:`cosim.convergence`; without them every rank needs ``training.rounds``).
Without a profile the table holds only the scenario's cut and rank, as the
workload measures them. Under power control the devices send at full power
(``allocation.power: full``, water-filled over their subchannels) unless
``least`` asks for the solver's least-power plan.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import solver

from .errors import CosimError, ScenarioError
from .problem import applied_power, build_problem
from .profile_file import profile_convergence, read_profile
from .radio import with_uplink
from .scenario import Scenario
from .seeding import stream

#: Policies that choose the cut and the rank as well as the resources.
CHOOSE_CUT_RANK = ("optimizer", "split_rank_only")


class SolverAllocator:
    """``allocate(round, now_s, radios) -> (radios, predicted_round_s, cut, rank)`` for the engine.

    Parameters
    ----------
    sc : Scenario
        ``allocation.policy``, ``.every``, ``.knowledge``, the cut and the rank.
    costs : dict
        The CostTable fields: the run's one cut and rank, or a whole profiled table.
    rounds_to_target : array or None
        rounds(rank) for each rank of ``costs`` (None: every rank needs ``training.rounds``).
    """

    def __init__(self, sc: Scenario, costs: dict, *, rounds_to_target: np.ndarray | None = None):
        self.sc = sc
        self.costs = costs
        self.rounds_to_target = rounds_to_target
        self.policy = solver.get_policy(sc.allocation.policy)
        self.decisions: list[dict] = []

    @classmethod
    def for_workload(cls, sc: Scenario, workload) -> "SolverAllocator":
        """The allocator of ``sc`` for ``workload``: the profile's full table where there is one."""
        if sc.workload.profile is None:
            return cls(sc, workload.cost_table())
        if sc.workload.kind == "replay":
            return cls(sc, workload.cost_table(), rounds_to_target=workload.rounds_to_target())
        try:
            profile = read_profile(Path(sc.workload.profile))
        except CosimError as exc:
            raise ScenarioError([f"workload.profile: {exc}"]) from None
        conv = profile_convergence(profile)
        costs = profile["costs"]
        cuts, ranks = costs["cuts"].tolist(), costs["ranks"].tolist()
        if sc.split.cut_layer not in cuts or sc.lora.rank not in ranks:
            raise ScenarioError([f"workload.profile: {sc.workload.profile} lacks split.cut_layer={sc.split.cut_layer} "
                                 f"or lora.rank={sc.lora.rank} (cuts {cuts}, ranks {ranks})"])
        return cls(sc, costs, rounds_to_target=None if conv is None else conv.rounds_for(costs["ranks"]))

    def __call__(self, round_index: int, now_s: float, radios: list) -> tuple[list, float, int, int]:
        a = self.sc.allocation
        if a.every == "once" and round_index > 0:
            last = self.decisions[-1]
            return radios, last["predicted_s"], last["cut"], last["rank"]
        problem = build_problem(self.sc, self.costs, knowledge=a.knowledge, radios=radios, t_s=now_s,
                                rounds_to_target=self.rounds_to_target)
        sol = self.policy(problem, cut=self.sc.split.cut_layer, rank=self.sc.lora.rank,
                          rng=stream(self.sc.seed, "allocation", round_index))
        # The round delay is the slowest device's at full power either way; full power gives the
        # others a margin instead of finishing them exactly then (allocation.power).
        sol = applied_power(problem, sol, a.policy, a.power)
        new = []
        for k, radio in enumerate(radios):
            subs = np.flatnonzero(sol.assignment == k)
            new.append(with_uplink(radio, self.sc, subs, sol.power_w[k, subs]))
        self.decisions.append({"round": round_index, "predicted_s": float(sol.round_delay_s),
                               "cut": int(sol.cut), "rank": int(sol.rank), "rounds_to_target": float(sol.rounds),
                               "subchannels": [int((sol.assignment == k).sum()) for k in range(len(radios))]})
        return new, float(sol.round_delay_s), int(sol.cut), int(sol.rank)
