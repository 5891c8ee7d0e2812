"""Which aggregation modes, participation and availability settings go with which strategy.

The table :data:`MODES_BY_STRATEGY` is the one place that says it; the strategies
(:mod:`cosim.strategies`) and the README's scenario reference read it.
"""

from __future__ import annotations

from pathlib import Path

from ..availability import read_availability_file
from ..errors import ScenarioError

_ALL = ("barrier", "deadline", "over_selection", "fedasync", "fedbuff")
_ROUNDS = ("barrier", "deadline", "over_selection")

#: strategy.name -> the aggregation.mode values it runs under.
MODES_BY_STRATEGY = {
    "split": _ALL, "sfl_v2": _ALL, "sl": ("barrier",),
    "fedlora": _ALL, "soft": _ALL, "topk": _ALL, "randomk": _ALL, "tsfa": _ROUNDS,
}


def _who_runs(mode: str) -> str:
    return ", ".join(name for name, modes in MODES_BY_STRATEGY.items() if mode in modes)


def federation_problems(sc) -> list[str]:
    """Problems of the aggregation, participation and availability sections of scenario ``sc`` against the rest."""
    problems = []
    a, p, av = sc.aggregation, sc.participation, sc.availability
    name = sc.strategy.name
    if a.mode not in MODES_BY_STRATEGY[name]:
        problems.append(f"aggregation.mode: {a.mode!r} does not run with strategy.name={name!r} (which runs under "
                        f"{', '.join(MODES_BY_STRATEGY[name])}); {a.mode!r} runs with: {_who_runs(a.mode)}")
    if a.mode == "deadline" and a.deadline_s is None:
        problems.append("aggregation.deadline_s: expected a deadline in seconds with aggregation.mode: deadline "
                        "(got null)")
    if a.deadline_s is not None and a.mode not in ("deadline", "over_selection"):
        problems.append(f"aggregation.deadline_s: only 'deadline' and 'over_selection' use a deadline "
                        f"(aggregation.mode is {a.mode!r}); remove it")
    if a.time_budget_s is not None and a.mode not in ("fedasync", "fedbuff"):
        problems.append(f"aggregation.time_budget_s: only 'fedasync' and 'fedbuff' use a time budget "
                        f"(aggregation.mode is {a.mode!r}); remove it")
    if a.mode == "over_selection" and p.fraction == 1.0:
        problems.append("participation.fraction: expected a fraction below 1 with aggregation.mode: over_selection "
                        "(with 1 every online client is needed, so none can be over-selected) (got 1)")
    if a.mode in ("fedasync", "fedbuff") and sc.strategy.aggregation == "product":
        problems.append(f"strategy.aggregation: expected 'factors' with aggregation.mode: {a.mode} (the asynchronous "
                        f"server mixes the factors) (got 'product')")
    partial = p.fraction < 1.0 or av.model != "always" or a.mode in ("over_selection", "fedasync", "fedbuff")
    if sc.allocation.policy != "equal" and partial:
        problems.append(f"allocation.policy: expected 'equal' with partial participation, availability or "
                        f"aggregation.mode {a.mode!r} (the joint optimizer plans for every client at once) "
                        f"(got {sc.allocation.policy!r})")
    if sc.allocation.policy in ("optimizer", "split_rank_only") and name != "split":
        problems.append(f"allocation.policy: {sc.allocation.policy!r} changes the cut and rank, which only "
                        f"strategy.name: split carries over (got strategy.name={name!r})")
    if av.model == "file":
        if av.file is None:
            problems.append("availability.file: expected a CSV file with availability.model: file (got null)")
        else:
            if not Path(av.file).is_file():
                problems.append(f"availability.file: {av.file}: no such file")
            else:
                try:
                    read_availability_file(av.file, sc.clients.count)
                except ScenarioError as exc:
                    problems.extend(exc.problems)
    elif av.file is not None:
        problems.append(f"availability.file: only availability.model: file reads a file (model is {av.model!r}); "
                        f"remove it")
    return problems
