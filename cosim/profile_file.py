"""Reading a profile written by ``cosim profile --out``: the cost table and the pilot curves.

Below everything that reads profiles (the replay, the allocation policies, the
scenario checks, ``cosim optimize``): it imports only the convergence fits.

A profile is JSON that a user may have edited, copied or truncated, so every
field is checked before it is used (:func:`profile_file_problems`) and every
problem is named as ``file: dotted.key: what was expected (got X)``:

- ``model`` (text), ``batch_size`` and ``seq_len`` (integers >= 1): what the
  table was measured with; ``n_layers`` (integer >= 2), ``task`` and
  ``activation_dtype`` (text) are optional;
- ``lora`` (optional): ``alpha`` (> 0), ``dropout`` (in [0, 1)),
  ``target_modules`` (null or a list of text);
- ``costs``: ``cuts`` and ``ranks``, non-empty lists of distinct integers >= 1
  (cuts below ``n_layers`` when given), and for C cuts and R ranks the C x R
  tables ``client_forward_flops``, ``client_backward_flops``, ``server_flops``,
  ``client_adapter_bytes`` and the C-long ``activation_bytes``,
  ``gradient_bytes``, all finite numbers >= 0;
- ``server_adapter_bytes`` (null or C x R, as above) and
  ``adapter_element_bytes`` (null or > 0), absent in older profiles;
- ``pilot`` (null, or the pilot runs): ``rounds`` (>= 2), ``ranks`` (distinct
  integers >= 1), ``eval_loss`` and ``accuracy`` (rank as text -> ``rounds + 1``
  finite values; losses >= 0, accuracies in [0, 1]), ``target`` (null or
  ``metric`` loss|accuracy, ``value``, ``max_rounds``, ``tolerance``), and the
  pilot's training settings (numbers or text, compared with a scenario's).

Keys not listed are ignored (a newer ``cosim profile`` may write more).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .convergence import Convergence
from .errors import CosimError, ScenarioError

# The cost table's arrays, as ``solver.CostTable`` fields.
ARRAYS = ("cuts", "ranks", "client_forward_flops", "client_backward_flops", "server_flops",
           "activation_bytes", "gradient_bytes", "client_adapter_bytes")
TABLES = ("client_forward_flops", "client_backward_flops", "server_flops", "client_adapter_bytes")
PER_CUT = ("activation_bytes", "gradient_bytes")
MAX_INDEX = 2**31 - 1         # cuts, ranks, rounds: beyond any model, and within numpy's int64
# The pilot's training settings: key -> "number" or "text" (compared with the scenario's settings).
PILOT_SETTINGS = {"clients": "integer", "local_iterations": "integer", "seed": "integer", "cut_layer": "integer",
                  "test_size": "integer", "lr": "number", "weight_decay": "number", "lora_alpha": "number",
                  "task": "text", "partition": "text"}


def _short(value: Any) -> str:
    text = json.dumps(value, allow_nan=True) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(v: Any, lower: int = 1) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lower <= v <= MAX_INDEX


def _is_number(v: Any, lower: float = 0.0, upper: float = math.inf, *, strict: bool = False) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and (v > lower if strict else v >= lower) and v <= upper)


def _indices(raw: Any, path: str, problems: list[str]) -> list[int] | None:
    """A non-empty list of distinct integers >= 1 (cuts, ranks)."""
    if not isinstance(raw, list) or not raw or not all(_is_int(v) for v in raw):
        problems.append(f"{path}: expected a non-empty list of integers >= 1 (got {_short(raw)})")
        return None
    if len(set(raw)) != len(raw):
        problems.append(f"{path}: expected distinct values (got {_short(raw)})")
        return None
    return raw


def _numbers(raw: Any, shape: tuple[int, ...] | None, path: str, problems: list[str], what: str = "numbers >= 0",
             lower: float = 0.0, upper: float = math.inf) -> None:
    """A list (or a list of lists) of finite numbers in [lower, upper], of ``shape`` when it is known."""
    if shape is None:                    # the table's size is unknown (bad cuts or ranks): check the values only
        rows = raw if isinstance(raw, list) and all(isinstance(r, list) for r in raw) else [raw]
        good = all(isinstance(r, list) and all(_is_number(v, lower, upper) for v in r) for r in rows)
        if not good:
            problems.append(f"{path}: expected finite {what} (got {_short(raw)})")
        return
    dims = " x ".join(str(n) for n in shape)
    rows = raw if len(shape) == 2 and isinstance(raw, list) else [raw]
    ok = isinstance(raw, list) and len(raw) == shape[0] and all(
        isinstance(r, list) and len(r) == shape[-1] for r in rows)
    if not ok:
        problems.append(f"{path}: expected {dims} finite {what} (got {_short(raw)})")
    elif not all(_is_number(v, lower, upper) for r in rows for v in r):
        problems.append(f"{path}: expected finite {what} (got {_short(raw)})")


def _costs(raw: Any, n_layers: Any, problems: list[str]) -> tuple[int, int] | None:
    """Check the cost table; its shape (cuts, ranks) when both are valid."""
    if not isinstance(raw, dict):
        problems.append(f"costs: expected a mapping of the cost table's arrays (got {_short(raw)})")
        return None
    missing = [name for name in ARRAYS if name not in raw]
    if missing:
        problems.append(f"costs: expected the arrays {', '.join(missing)} too")
    cuts = _indices(raw["cuts"], "costs.cuts", problems) if "cuts" in raw else None
    ranks = _indices(raw["ranks"], "costs.ranks", problems) if "ranks" in raw else None
    if cuts and _is_int(n_layers, 2) and max(cuts) >= n_layers:
        problems.append(f"costs.cuts: expected cuts below n_layers={n_layers} (got {_short(cuts)})")
    for name in (*TABLES, *PER_CUT):
        shape = None
        if cuts and name in PER_CUT:
            shape = (len(cuts),)
        elif cuts and ranks:
            shape = (len(cuts), len(ranks))
        if name in raw:
            _numbers(raw[name], shape, f"costs.{name}", problems)
    return (len(cuts), len(ranks)) if cuts and ranks else None


def _pilot(raw: Any, problems: list[str]) -> None:
    if not isinstance(raw, dict):
        problems.append(f"pilot: expected null or a mapping of the pilot runs (got {_short(raw)})")
        return
    rounds = raw.get("rounds")
    if not _is_int(rounds, 2):
        problems.append(f"pilot.rounds: expected an integer >= 2 (got {_short(rounds)})")
        rounds = None
    ranks = _indices(raw.get("ranks"), "pilot.ranks", problems)
    for key, bounds, what in (("eval_loss", (0.0, math.inf), "losses >= 0"), ("accuracy", (0.0, 1.0),
                                                                              "accuracies in [0, 1]")):
        curves = raw.get(key)
        if not isinstance(curves, dict):
            problems.append(f"pilot.{key}: expected a mapping rank -> values (got {_short(curves)})")
            continue
        for rank in ranks or ():
            if str(rank) not in curves:
                problems.append(f"pilot.{key}: expected a curve for rank {rank} (got ranks {_short(list(curves))})")
            else:
                shape = (rounds + 1,) if rounds else None
                _numbers(curves[str(rank)], shape, f"pilot.{key}.{rank}", problems, what, *bounds)
    target = raw.get("target")
    if target is not None:
        if not isinstance(target, dict):
            problems.append(f"pilot.target: expected null or a mapping (got {_short(target)})")
        else:
            checks = (("metric", lambda v: v in ("loss", "accuracy"), "'loss' or 'accuracy'"),
                      ("value", lambda v: v is None or _is_number(v, -math.inf), "null or a number"),
                      ("max_rounds", lambda v: v is None or _is_int(v), "null or an integer >= 1"),
                      ("tolerance", lambda v: v is None or _is_number(v), "null or a number >= 0"))
            for key, ok, what in checks:
                if key in target and not ok(target[key]):
                    problems.append(f"pilot.target.{key}: expected {what} (got {_short(target[key])})")
    for key, kind in PILOT_SETTINGS.items():
        value = raw.get(key)
        good = (value is None or (kind == "text" and isinstance(value, str))
                or (kind == "integer" and _is_int(value, 0)) or (kind == "number" and _is_number(value)))
        if not good:
            problems.append(f"pilot.{key}: expected {'an' if kind == 'integer' else 'a'} {kind} (got {_short(value)})")


def profile_file_problems(raw: Any) -> list[str]:
    """Every problem of a profile's parsed JSON, as ``dotted.key: what was expected (got X)`` lines."""
    if not isinstance(raw, dict):
        return [f"expected a JSON object written by `cosim profile --out` (got {_short(raw)})"]
    problems: list[str] = []
    if not isinstance(raw.get("model"), str):
        problems.append(f"model: expected the model's name (got {_short(raw.get('model'))})")
    for key in ("batch_size", "seq_len"):
        if not _is_int(raw.get(key)):
            problems.append(f"{key}: expected an integer >= 1 (got {_short(raw.get(key))})")
    if "n_layers" in raw and not _is_int(raw["n_layers"], 2):
        problems.append(f"n_layers: expected an integer >= 2 (got {_short(raw['n_layers'])})")
    for key in ("task", "activation_dtype"):
        if key in raw and not isinstance(raw[key], str):
            problems.append(f"{key}: expected text (got {_short(raw[key])})")
    lora = raw.get("lora")
    if lora is not None and not isinstance(lora, dict):
        problems.append(f"lora: expected a mapping (got {_short(lora)})")
    elif lora is not None:
        targets = lora.get("target_modules")
        if targets is not None and not (isinstance(targets, list) and all(isinstance(t, str) for t in targets)):
            problems.append(f"lora.target_modules: expected null or a list of module names (got {_short(targets)})")
        if "alpha" in lora and not _is_number(lora["alpha"], strict=True):
            problems.append(f"lora.alpha: expected a number > 0 (got {_short(lora['alpha'])})")
        if "dropout" in lora and not (_is_number(lora["dropout"]) and lora["dropout"] < 1):
            problems.append(f"lora.dropout: expected a number in [0, 1) (got {_short(lora['dropout'])})")
    shape = None
    if "costs" not in raw:
        problems.append("costs: expected the cost table (missing)")
    else:
        shape = _costs(raw["costs"], raw.get("n_layers"), problems)
    if raw.get("server_adapter_bytes") is not None:
        _numbers(raw["server_adapter_bytes"], shape, "server_adapter_bytes", problems)
    element = raw.get("adapter_element_bytes")
    if element is not None and not _is_number(element, strict=True):
        problems.append(f"adapter_element_bytes: expected null or a number > 0 (got {_short(element)})")
    if raw.get("pilot") is not None:
        _pilot(raw["pilot"], problems)
    return problems


def read_profile(path: str | Path) -> dict:
    """Read a profile written by ``cosim profile --out``; ``costs`` holds numpy arrays again.

    Profiles written before ``server_adapter_bytes``, ``adapter_element_bytes``
    and ``pilot`` existed read with those set to None.

    Raises
    ------
    ScenarioError
        Naming every problem of the file, each as ``path: dotted.key: expected ... (got X)``.
    """
    try:
        result = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ScenarioError([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([f"{path}: cannot read ({type(exc).__name__})"]) from None
    except ValueError as exc:            # json.JSONDecodeError, or a number too long to convert
        raise ScenarioError([f"{path}: not JSON ({str(exc).split(';')[0]})"]) from None
    except RecursionError:
        raise ScenarioError([f"{path}: not JSON that can be read (nested too deeply)"]) from None
    problems = profile_file_problems(result)
    if problems:
        raise ScenarioError([f"{path}: {p}" for p in problems])
    costs = result["costs"]
    result["costs"] = {name: np.asarray(costs[name], dtype=np.int64 if name in ("cuts", "ranks") else float)
                       for name in ARRAYS}
    if result.get("server_adapter_bytes") is not None:
        result["server_adapter_bytes"] = np.asarray(result["server_adapter_bytes"], dtype=float)
    for key in ("server_adapter_bytes", "adapter_element_bytes", "pilot"):
        result.setdefault(key, None)
    if result["pilot"] is not None:
        try:
            Convergence.from_pilot(result["pilot"])  # curves that cannot be fitted are refused here, once
        except CosimError as exc:
            raise ScenarioError([f"{path}: {exc}"]) from None
    return result


def profile_convergence(result: dict) -> Convergence | None:
    """The fitted convergence of a profile's pilot runs, or None when it has none."""
    return Convergence.from_pilot(result["pilot"]) if result.get("pilot") else None
