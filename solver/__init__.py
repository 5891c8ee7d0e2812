"""Joint optimizer of subchannels, transmit power, split point and LoRA rank.

Minimises the total training delay ``rounds(rank) x round_delay`` of split
federated LoRA over OFDMA (FedsLLM, arXiv 2504.14667). Plain numpy arrays in
and out, SI units; imports neither SimPy nor torch.

Public API
----------
CostTable, Problem
    Inputs (frozen, validated): the profiled FLOPs/bytes and the instance.
Solution, DelayBreakdown
    Output (frozen): the decision and its per-client delays.
evaluate
    The objective and the constraint check, shared by every policy.
solve
    The alternating optimizer; with ``Problem.energy_budget_j`` the least delay
    under a per-device energy budget per round (:mod:`solver.energy`).
brute_force
    Exact optimum of small instances (under the energy budget too).
solve_energy, brute_force_energy
    The energy-budget search and its exact reference.
equal_allocation, random_allocation, optimize_resources, optimize_split_rank
    Baselines.
POLICIES, get_policy
    Name -> ``(problem, *, cut, rank, rng) -> Solution``.
water_filling, inverse_water_filling, WaterFilling
    The closed-form water-filling used by power control.
TsfaDecision, VirtualQueue, tsfa_decision, offline_rank, shares_to_subchannels
    TSFA (SOFT, arXiv 2505.00333): each round's bandwidth shares and sparsification
    ratios by drift-plus-penalty under a long-term latency budget, the offline
    LoRA rank, and shares rounded to whole subchannels.
"""

from solver.alternating import solve
from solver.baselines import equal_allocation, optimize_resources, optimize_split_rank, random_allocation
from solver.brute_force import brute_force
from solver.energy import brute_force_energy, solve_energy
from solver.objective import evaluate
from solver.policies import POLICIES, get_policy
from solver.power import full_power
from solver.problem import CostTable, Problem
from solver.solution import DelayBreakdown, Solution
from solver.tsfa import TsfaDecision, VirtualQueue, offline_rank, shares_to_subchannels, tsfa_decision
from solver.waterfilling import WaterFilling, inverse_water_filling, water_filling

__all__ = [
    "POLICIES",
    "CostTable",
    "DelayBreakdown",
    "Problem",
    "Solution",
    "TsfaDecision",
    "VirtualQueue",
    "WaterFilling",
    "brute_force",
    "brute_force_energy",
    "equal_allocation",
    "evaluate",
    "get_policy",
    "inverse_water_filling",
    "offline_rank",
    "optimize_resources",
    "optimize_split_rank",
    "random_allocation",
    "shares_to_subchannels",
    "solve",
    "solve_energy",
    "tsfa_decision",
    "water_filling",
]
