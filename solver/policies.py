"""Registry of allocation policies, so that a scenario picks one by name.

Every entry has the signature ``(problem, *, cut, rank, rng) -> Solution``;
arguments a policy does not use are ignored (``cut`` and ``rank`` are required by
the policies that fix them, ``rng`` by ``"random"``).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Callable, Mapping

import numpy as np

from solver.alternating import solve
from solver.baselines import equal_allocation, optimize_resources, optimize_split_rank, random_allocation
from solver.problem import Problem
from solver.solution import Solution

Policy = Callable[..., Solution]


def _cut_rank(name: str, cut, rank) -> tuple[int, int]:
    if cut is None or rank is None:
        raise ValueError(f"policy {name!r}: expected a cut and a rank (got cut={cut!r}, rank={rank!r})")
    return cut, rank


def _optimizer(problem: Problem, *, cut=None, rank=None, rng=None) -> Solution:
    return solve(problem)


def _equal(problem: Problem, *, cut=None, rank=None, rng=None) -> Solution:
    return equal_allocation(problem, *_cut_rank("equal", cut, rank))


def _random(problem: Problem, *, cut=None, rank=None, rng: np.random.Generator | None = None) -> Solution:
    return random_allocation(problem, *_cut_rank("random", cut, rank), rng)


def _resources_only(problem: Problem, *, cut=None, rank=None, rng=None) -> Solution:
    return optimize_resources(problem, *_cut_rank("resources_only", cut, rank))


def _split_rank_only(problem: Problem, *, cut=None, rank=None, rng=None) -> Solution:
    return optimize_split_rank(problem)


#: Policy name (as written in a scenario) -> ``(problem, *, cut, rank, rng) -> Solution``.
POLICIES: Mapping[str, Policy] = MappingProxyType({
    "optimizer": _optimizer,
    "equal": _equal,
    "random": _random,
    "resources_only": _resources_only,
    "split_rank_only": _split_rank_only,
})


def get_policy(name: str) -> Policy:
    """The policy registered as ``name``; ``ValueError`` listing the valid names otherwise."""
    try:
        return POLICIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"policy: expected one of {sorted(POLICIES)} (got {name!r})") from None
