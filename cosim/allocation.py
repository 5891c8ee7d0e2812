"""Allocation policies inside a run: the joint problem re-solved on the channel the run has.

At the start of a round (every round, or once) the policy builds the problem of
``solver`` from the clients' radios as the base station would know them
(``allocation.knowledge``) and the workload's measured costs for the run's cut
and rank, solves it, and gives each client its new uplink (subchannels, power).
"""

from __future__ import annotations

import numpy as np

import solver

from .optimize import build_problem
from .radio import with_uplink
from .scenario import Scenario
from .seeding import stream


class SolverAllocator:
    """``allocate(round, now_s, radios) -> (radios, predicted_round_s)`` for the engine.

    Parameters
    ----------
    sc : Scenario
        ``allocation.policy``, ``.every``, ``.knowledge``, the cut and the rank.
    costs : dict
        The CostTable fields for the run's one cut and rank (measured by the workload).
    """

    def __init__(self, sc: Scenario, costs: dict):
        self.sc = sc
        self.costs = costs
        self.policy = solver.get_policy(sc.allocation.policy)
        self.decisions: list[dict] = []

    def __call__(self, round_index: int, now_s: float, radios: list) -> tuple[list, float]:
        a = self.sc.allocation
        if a.every == "once" and round_index > 0:
            return radios, self.decisions[-1]["predicted_s"]
        problem = build_problem(self.sc, self.costs, knowledge=a.knowledge, radios=radios, t_s=now_s,
                                rounds_to_target=np.ones(1))
        sol = self.policy(problem, cut=self.sc.split.cut_layer, rank=self.sc.lora.rank,
                          rng=stream(self.sc.seed, "allocation", round_index))
        new = []
        for k, radio in enumerate(radios):
            subs = np.flatnonzero(sol.assignment == k)
            new.append(with_uplink(radio, self.sc, subs, sol.power_w[k, subs]))
        self.decisions.append({"round": round_index, "predicted_s": float(sol.round_delay_s),
                               "subchannels": [int((sol.assignment == k).sum()) for k in range(len(radios))]})
        return new, float(sol.round_delay_s)
