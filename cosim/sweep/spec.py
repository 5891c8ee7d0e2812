"""The sweep file: a base scenario and what varies (``grid``, ``zip``, ``cases``, ``seeds``).

```yaml
name: ranks                 # default: the file's stem; the output folder is results/<name>
base: quickstart.yaml       # a scenario YAML, relative to this file
grid:                       # every combination
  clients.count: [2, 4]
  lora.rank: [4, 8]
zip:                        # varied together: the i-th values form one point
  channel.n_subchannels: [25, 50]
  compute.server_flops_per_s: [50e12, 100e12]
cases:                      # listed points
  - {split.cut_layer: 2}
  - {split.cut_layer: 3, lora.alpha: 8}
seeds: [0, 1]
```

The runs are every combination of one case, one grid point, one zip point and one
seed. Problems with the file itself are found here; problems with the scenarios it
resolves to are found by :func:`cosim.sweep.expand.expand_runs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ScenarioError
from ..scenario.load import read_yaml

SWEEP_KEYS = ("name", "base", "grid", "zip", "cases", "seeds")


@dataclass(frozen=True)
class Sweep:
    """A checked sweep file. ``base_path`` is resolved against the sweep file's folder."""

    name: str
    base_path: Path
    grid: dict[str, list] = field(default_factory=dict)
    zip: dict[str, list] = field(default_factory=dict)
    cases: list[dict[str, Any]] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    source: str = "<sweep>"


def _dotted(key: Any) -> bool:
    return isinstance(key, str) and bool(key) and all(part.strip() for part in key.split("."))


def _lists(section: str, raw: Any, problems: list[str]) -> dict[str, list]:
    """A mapping dotted.key -> non-empty list, as in ``grid`` and ``zip``."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(f"{section}: expected a mapping of dotted.key -> list of values (got {raw!r:.60})")
        return {}
    out = {}
    for key, values in raw.items():
        if not _dotted(key):
            problems.append(f"{section}.{key}: expected a dotted key such as lora.rank")
        elif not isinstance(values, list) or not values:
            problems.append(f"{section}.{key}: expected a non-empty list of values (got {values!r:.60})")
        else:
            out[key] = values
    return out


def sweep_from_dict(raw: Any, *, source: str, folder: Path) -> Sweep:
    """Check a sweep mapping; raise ScenarioError listing every problem as ``source: path: message``."""
    if not isinstance(raw, dict):
        raise ScenarioError([f"{source}: expected a mapping with base and grid/zip/cases/seeds "
                             f"(got {type(raw).__name__})"])
    problems: list[str] = []
    for key in raw:
        if key not in SWEEP_KEYS:
            problems.append(f"{key}: unknown key (valid keys: {', '.join(sorted(SWEEP_KEYS))})")
    name = raw.get("name", Path(source).stem)
    if not isinstance(name, str) or not name.strip() or "/" in name:
        problems.append(f"name: expected a non-empty string without '/' (got {name!r})")
    base = raw.get("base")
    base_path = Path()
    if not isinstance(base, str) or not base:
        problems.append(f"base: expected the path of a scenario YAML, relative to the sweep file (got {base!r})")
    else:
        base_path = folder / base
        if not base_path.is_file():
            problems.append(f"base: no such file {base_path} (got {base!r})")
    grid = _lists("grid", raw.get("grid"), problems)
    zipped = _lists("zip", raw.get("zip"), problems)
    lengths = {key: len(values) for key, values in zipped.items()}
    if len(set(lengths.values())) > 1:
        problems.append("zip: expected lists of equal length (got " +
                        ", ".join(f"{k}: {n}" for k, n in lengths.items()) + ")")
    cases = raw.get("cases") or []
    if not isinstance(cases, list):
        problems.append(f"cases: expected a list of mappings dotted.key -> value (got {cases!r:.60})")
        cases = []
    for i, case in enumerate(cases):
        if not isinstance(case, dict) or not case:
            problems.append(f"cases[{i}]: expected a non-empty mapping dotted.key -> value (got {case!r:.60})")
        else:
            problems.extend(f"cases[{i}].{k}: expected a dotted key such as lora.rank" for k in case if not _dotted(k))
    seeds = raw.get("seeds") or []
    if not isinstance(seeds, list) or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds):
        problems.append(f"seeds: expected a list of integers >= 0 (got {seeds!r:.60})")
        seeds = []
    elif len(set(seeds)) < len(seeds):
        problems.append(f"seeds: expected distinct seeds (got {seeds!r:.60})")
    seen: dict[str, str] = {}
    for section, keys in (("grid", grid), ("zip", zipped), ("seeds", ["seed"] if seeds else [])):
        for key in keys:
            if key in seen:
                problems.append(f"{section}.{key}: already varied in {seen[key]}")
            seen[key] = section
    for i, case in enumerate(c for c in cases if isinstance(c, dict)):
        for key in case:
            if seen.get(key) in ("grid", "zip", "seeds"):
                problems.append(f"cases[{i}].{key}: already varied in {seen[key]}")
    if problems:
        raise ScenarioError([f"{source}: {p}" for p in problems])
    return Sweep(name=name, base_path=base_path, grid=grid, zip=zipped, cases=[dict(c) for c in cases],
                 seeds=list(seeds), source=source)


def read_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file (the scenarios it resolves to are checked by ``expand_runs``)."""
    path = Path(path)
    return sweep_from_dict(read_yaml(path), source=str(path), folder=path.parent)
