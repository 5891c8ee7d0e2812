"""The strategies, by the name a scenario gives in ``strategy.name``.

Each is a small class (:class:`cosim.strategies.base.Strategy`): it builds its
workload, plans a round for the selected clients, gives a client's local work
as timed steps and says what the client uploads. ``REGISTRY`` maps names to
classes; :func:`get_strategy` rejects an unknown name, listing the valid ones.
"""

from __future__ import annotations

from ..errors import ScenarioError
from .base import Strategy, equal_plan
from .fed import FedLoRAStrategy, RandomKStrategy, SoftStrategy, TopKStrategy, TsfaStrategy
from .split import SequentialSplitStrategy, SflV2Strategy, SplitStrategy

REGISTRY: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Add a strategy class under its ``name`` (a second class with the same name is an error)."""
    if not cls.name or cls.name in REGISTRY:
        raise ValueError(f"strategy name {cls.name!r} is empty or taken (by {REGISTRY.get(cls.name)})")
    REGISTRY[cls.name] = cls
    return cls


for _cls in (SplitStrategy, SflV2Strategy, SequentialSplitStrategy, FedLoRAStrategy, SoftStrategy, TopKStrategy,
             RandomKStrategy, TsfaStrategy):
    register(_cls)


def get_strategy(name: str) -> type[Strategy]:
    """The strategy class registered as ``name``."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ScenarioError([f"strategy.name: unknown strategy {name!r} (valid: {', '.join(REGISTRY)})"]) from None


__all__ = ["REGISTRY", "Strategy", "equal_plan", "get_strategy", "register"]
