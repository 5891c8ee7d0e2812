"""The one scenario loader: YAML file + ``--set`` overrides -> a checked ``Scenario``."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any, Iterable

import yaml

from ..errors import ScenarioError
from .fields import parse_section, to_plain
from .schema import Scenario
from .validate import ScenarioWarning, file_problems

#: The message for an empty scenario file: ``{}`` is the scenario of every default, an empty file is refused.
EMPTY = "empty scenario (expected a mapping of sections; write {} for a scenario of every default)"


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``dotted.key=value``; the value is read as YAML (``3``, ``1e-3``, ``[1, 2]``, ``null``)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ScenarioError([f"--set {text}: expected dotted.key=value"])
    try:
        return key, yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as exc:
        raise ScenarioError([f"--set {text}: the value is not valid YAML ({exc.__class__.__name__})"]) from None
    except (ValueError, RecursionError) as exc:
        raise ScenarioError([f"--set {short_text(text)}: {_unreadable(exc)}"]) from None


def apply_overrides(raw: dict, overrides: Iterable[tuple[str, Any]]) -> tuple[dict, list[str]]:
    """Return a copy of ``raw`` with each ``(dotted.key, value)`` set, and the problems found."""
    out = copy.deepcopy(raw)
    problems = []
    for key, value in overrides:
        parts = key.split(".")
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                problems.append(f"--set {key}: {'.'.join(parts[:i + 1])} is not a section")
                break
            node = child
        else:
            node[parts[-1]] = value
    return out, problems


def scenario_from_dict(raw: Any, *, source: str = "<scenario>") -> Scenario:
    """Check a scenario mapping; raise ScenarioError listing every problem as ``source: path: message``.

    After the schema's checks, the scenario is checked against the files it names: its model's
    configuration (depth, width, module names; no weights loaded) and its ``workload.profile``
    (:mod:`cosim.scenario.validate`). Warnings are issued as :class:`ScenarioWarning`.
    """
    if raw is None:
        raise ScenarioError([f"{source}: {EMPTY}"])
    if not isinstance(raw, dict):
        raise ScenarioError([f"{source}: expected a mapping of sections (got {type(raw).__name__})"])
    problems: list[str] = []
    scenario = parse_section(Scenario, raw, "", problems)
    if scenario is not None:
        problems.extend(scenario.check())
    if not problems:
        problems, warned = file_problems(scenario)
        for text in warned:
            warnings.warn(f"{source}: {text}", ScenarioWarning, stacklevel=2)
    if problems:
        raise ScenarioError([f"{source}: {p}" for p in problems])
    return scenario


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file; a missing file or a syntax error is a ScenarioError naming the file (and line)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ScenarioError([f"{path}: no such file"]) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ScenarioError([f"{path}: cannot read ({exc.__class__.__name__})"]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ScenarioError([f"{path}:{where}: invalid YAML: {problem}"]) from None
    except (ValueError, RecursionError) as exc:
        raise ScenarioError([f"{path}: {_unreadable(exc)}"]) from None


def _unreadable(exc: Exception) -> str:
    """Why valid YAML text cannot be read: an integer beyond Python's 4300 digits, or nesting deeper than
    the parser's recursion (both raised by the YAML library outside its own errors)."""
    if isinstance(exc, RecursionError):
        return "invalid YAML: nested too deeply to read"
    return f"invalid YAML: {str(exc).split(';')[0]}"


def short_text(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def read_scenario_file(path: str | Path) -> dict:
    """The mapping of a scenario file; an empty file (or only comments, or ``null``) is refused.

    ``{}`` is the scenario of every default; an empty file is more likely a mistake (a file
    not yet written, a wrong path in a generated sweep) than a request for the defaults.
    """
    raw = read_yaml(path)
    if raw is None:
        raise ScenarioError([f"{path}: {EMPTY}"])
    if not isinstance(raw, dict):
        raise ScenarioError([f"{path}: expected a mapping of sections (got {type(raw).__name__})"])
    return raw


def load_scenario(path: str | Path, *, overrides: Iterable[str] = (), seed: int | None = None) -> Scenario:
    """Load and check ``path`` with ``--set`` overrides (``dotted.key=value``) and an optional seed."""
    raw = read_scenario_file(path)
    problems = []
    pairs = []
    for text in overrides:
        try:
            pairs.append(parse_override(text))
        except ScenarioError as exc:
            problems.extend(exc.problems)
    if seed is not None:
        pairs.append(("seed", seed))
    raw, more = apply_overrides(raw, pairs)
    problems.extend(more)
    if problems:
        raise ScenarioError(problems)
    return scenario_from_dict(raw, source=str(path))


def dump_scenario(scenario: Scenario) -> str:
    """The fully resolved scenario as YAML (every default written out)."""
    return yaml.safe_dump(to_plain(scenario), sort_keys=False)
