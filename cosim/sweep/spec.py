"""The sweep file: a base scenario, what varies (``grid``, ``zip``, ``cases``, ``seeds``), Slurm settings.

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
slurm:                      # only read by --engine slurm (every key optional)
  cluster: slurm            # slurm | local (this machine, through submitit) | debug (in process)
  partition: gpu
  time_min: 60              # per run
  cpus_per_task: 4          # also each run's torch threads
  gpus_per_node: 0
  mem_gb: 16
  array_parallelism: 32     # array tasks at once (default: --workers)
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

SWEEP_KEYS = ("name", "base", "grid", "zip", "cases", "seeds", "slurm")
SLURM_CLUSTERS = ("slurm", "local", "debug")


@dataclass(frozen=True)
class SlurmSettings:
    """The ``slurm:`` section of a sweep file: what each job of the array asks for.

    ``cluster`` picks submitit's executor: ``slurm`` (sbatch), ``local`` (subprocesses on
    this machine, for trying a sweep out) or ``debug`` (in this process, one after another).
    ``partition`` None is the cluster's default; ``mem_gb`` None asks for no memory;
    ``array_parallelism`` None caps simultaneous tasks at ``--workers``.
    """

    cluster: str = "slurm"
    partition: str | None = None
    time_min: int = 60
    cpus_per_task: int = 1
    gpus_per_node: int = 0
    mem_gb: float | None = None
    array_parallelism: int | None = None


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
    slurm: SlurmSettings | None = None


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


def _int(value: Any, lower: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= lower


def _slurm(raw: Any, problems: list[str]) -> SlurmSettings | None:
    """Check the ``slurm:`` section; every problem goes to ``problems``."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append(f"slurm: expected a mapping of settings (got {raw!r:.60})")
        return None
    fields = SlurmSettings.__dataclass_fields__
    ok: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in fields:
            problems.append(f"slurm.{key}: unknown key (valid keys: {', '.join(sorted(fields))})")
        elif key == "cluster" and value not in SLURM_CLUSTERS:
            problems.append(f"slurm.cluster: expected one of {', '.join(SLURM_CLUSTERS)} (got {value!r:.60})")
        elif key == "partition" and (not isinstance(value, str) or not value.strip()):
            problems.append(f"slurm.partition: expected a partition name (got {value!r:.60})")
        elif key in ("time_min", "cpus_per_task", "array_parallelism") and not _int(value, 1):
            problems.append(f"slurm.{key}: expected an integer > 0 (got {value!r:.60})")
        elif key == "gpus_per_node" and not _int(value, 0):
            problems.append(f"slurm.gpus_per_node: expected an integer >= 0 (got {value!r:.60})")
        elif key == "mem_gb" and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                  or not 0 < value < float("inf")):
            problems.append(f"slurm.mem_gb: expected a number of GB > 0 (got {value!r:.60})")
        else:
            ok[key] = value
    return SlurmSettings(**ok)


def sweep_from_dict(raw: Any, *, source: str, folder: Path) -> Sweep:
    """Check a sweep mapping; raise ScenarioError listing every problem as ``source: path: message``."""
    if raw is None:
        raise ScenarioError([f"{source}: empty sweep file (expected a mapping with base and grid/zip/cases/seeds)"])
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
    slurm = _slurm(raw.get("slurm"), problems)
    if problems:
        raise ScenarioError([f"{source}: {p}" for p in problems])
    return Sweep(name=name, base_path=base_path, grid=grid, zip=zipped, cases=[dict(c) for c in cases],
                 seeds=list(seeds), source=source, slurm=slurm)


def read_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file (the scenarios it resolves to are checked by ``expand_runs``)."""
    path = Path(path)
    return sweep_from_dict(read_yaml(path), source=str(path), folder=path.parent)
