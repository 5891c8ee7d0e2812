"""A sweep -> its runs: one resolved, checked scenario per point, named by a hash of that scenario."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from typing import Any

from ..errors import ScenarioError
from ..scenario import Scenario, dump_scenario, scenario_from_dict
from ..scenario.load import apply_overrides, read_scenario_file
from .spec import Sweep

RUN_ID_HEX = 12


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: its folder name, the parameters the sweep set, the resolved scenario."""

    run_id: str
    params: dict[str, Any]
    scenario: Scenario


def run_id(scenario: Scenario) -> str:
    """The first 12 hex digits of the SHA-256 of the resolved scenario YAML: same scenario, same folder."""
    return hashlib.sha256(dump_scenario(scenario).encode()).hexdigest()[:RUN_ID_HEX]


def points(sweep: Sweep) -> list[dict[str, Any]]:
    """The varied parameters of each run, in order: cases x grid x zip x seeds (the last varies fastest)."""
    cases = sweep.cases or [{}]
    keys = list(sweep.grid)
    grid = [dict(zip(keys, values)) for values in itertools.product(*sweep.grid.values())]
    n_zip = len(next(iter(sweep.zip.values()))) if sweep.zip else 0
    zipped = [{k: v[i] for k, v in sweep.zip.items()} for i in range(n_zip)] or [{}]
    seeds = [{"seed": s} for s in sweep.seeds] or [{}]
    return [{**c, **g, **z, **s} for c, g, z, s in itertools.product(cases, grid, zipped, seeds)]


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return str(value)


def describe(params: dict[str, Any]) -> str:
    """``clients.count=2 lora.rank=4 seed=0`` (or ``base`` when nothing varies)."""
    return " ".join(f"{k}={_text(v)}" for k, v in params.items()) or "base"


def expand_runs(sweep: Sweep) -> list[SweepRun]:
    """Resolve every run's scenario; raise one ScenarioError listing every problem with the run it belongs to.

    Problems read ``sweep.yaml: run 3 (lora.rank=0 seed=1): lora.rank: expected a value > 0 (got 0)``.
    Two points that resolve to the same scenario are an error too (they would share a folder).
    """
    base = read_scenario_file(sweep.base_path)
    problems: list[str] = []
    runs: list[SweepRun] = []
    first_of: dict[str, int] = {}
    for i, params in enumerate(points(sweep)):
        where = f"{sweep.source}: run {i} ({describe(params)})"
        raw, bad = apply_overrides(base, params.items())
        if bad:
            problems.extend(f"{where}: {p.removeprefix('--set ')}" for p in bad)
            continue
        try:
            scenario = scenario_from_dict(raw, source=str(sweep.base_path))
        except ScenarioError as exc:
            problems.extend(f"{where}: {p.removeprefix(str(sweep.base_path) + ': ')}" for p in exc.problems)
            continue
        rid = run_id(scenario)
        if rid in first_of:
            problems.append(f"{where}: resolves to the same scenario as run {first_of[rid]}")
            continue
        first_of[rid] = i
        runs.append(SweepRun(run_id=rid, params=params, scenario=scenario))
    if problems:
        raise ScenarioError(problems)
    return runs
