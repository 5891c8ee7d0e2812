"""Checks of a scenario against what it names: its model's configuration and its cost-table profile.

The loader runs them after the schema's own checks
(:func:`cosim.scenario.load.scenario_from_dict`), so ``cosim validate``,
``cosim run`` and every run of a ``cosim sweep`` refuse a scenario that cannot
work before anything runs. Nothing here loads weights or imports torch: the
model's depth and width come from its configuration (:mod:`cosim.model_info`),
the profile is a JSON file.

Problems are ``dotted.path: what was expected (got X)`` lines; settings that
make a profile's pilot curves a poorer guide without making them wrong are
warnings (:class:`ScenarioWarning`).
"""

from __future__ import annotations

import functools
from pathlib import Path

from ..errors import CosimError
from ..model_info import model_shape
from .schema import SPLIT_STRATEGIES

#: Allocation policies that read rounds(rank) from the profile's pilot curves.
PILOT_POLICIES = ("optimizer", "split_rank_only")
# Pilot training settings: (profile key, scenario path, refuse on mismatch). A refused one changes what a
# round of training does for each client; a warned one changes how many clients' rounds are averaged.
PILOT_SETTINGS = (
    ("local_iterations", "training.local_iterations", True),
    ("lr", "training.lr", True),
    ("weight_decay", "training.weight_decay", True),
    ("task", "data.task", True),
    ("lora_alpha", "lora.alpha", True),
    ("clients", "clients.count", False),
    ("partition", "data.partition", False),
    ("cut_layer", "split.cut_layer", False),
)


class ScenarioWarning(UserWarning):
    """A setting that works but probably not as meant (the CLI prints it as ``cosim: warning: ...``)."""


def setting(sc, dotted: str):
    """The value of ``sc`` at ``dotted`` (``"training.lr"``)."""
    value = sc
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def model_problems(sc) -> list[str]:
    """The scenario's settings that its model cannot have: cut, LoRA target modules, ranks."""
    name = sc.model.name
    try:
        shape = model_shape(name)
    except CosimError as exc:
        return [f"model.name: {str(exc).removeprefix(f'model {name!r}: ')} (got {name!r})"]
    problems = []
    about = f"{sc.model.name} ({shape.n_layers} blocks, hidden size {shape.hidden_size})"
    if sc.strategy.name in SPLIT_STRATEGIES and not 0 < sc.split.cut_layer < shape.n_layers:
        problems.append(f"split.cut_layer: expected 0 < cut_layer < {shape.n_layers}, the blocks of {about} "
                        f"(got {sc.split.cut_layer})")
    linears = shape.block_linears
    for i, target in enumerate(sc.lora.target_modules or ()):
        # PEFT's rule: a module is adapted when its name is the target or ends with "." + target.
        if linears is not None and not any(p == target or p.endswith("." + target) for p in linears):
            problems.append(f"lora.target_modules[{i}]: expected a linear module of a {shape.family} block "
                            f"({', '.join(linears)}; or the part after a dot) (got {target!r})")
    ranks = [("lora.rank", sc.lora.rank)]
    if sc.strategy.name == "tsfa":
        ranks += [(f"tsfa.rank_candidates[{i}]", r) for i, r in enumerate(sc.tsfa.rank_candidates)]
        ranks += [("tsfa.rank", sc.tsfa.rank)] if sc.tsfa.rank is not None else []
    for path, rank in ranks:
        if rank > shape.hidden_size:
            problems.append(f"{path}: expected at most the hidden size {shape.hidden_size} of {sc.model.name} "
                            f"(a rank-r update of an H-wide projection has rank at most H) (got {rank})")
    return problems


@functools.lru_cache(maxsize=16)
def _read(path: str, mtime_ns: int) -> dict:
    from ..profile_file import read_profile

    return read_profile(path)


def read_profile_once(path: str | Path) -> dict:
    """:func:`cosim.profile.read_profile`, read once per file version (a sweep checks many runs against one)."""
    path = Path(path)
    if not path.is_file():
        raise CosimError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    return _read(str(path.resolve()), path.stat().st_mtime_ns)


def profile_problems(sc, profile: dict, source: str, *, uses_pilot: str | None) -> tuple[list[str], list[str]]:
    """Mismatches between scenario ``sc`` and a profile read from ``source``: (problems, warnings).

    The cost table must have been measured with the scenario's model, batch, sequence length, cut
    encoding and LoRA target modules; a replay needs the scenario's cut and rank in it. Where the
    pilot curves are used, the pilot's training settings are compared too (:data:`PILOT_SETTINGS`):
    ``uses_pilot="decides"`` (rounds(rank) choose the cut and rank: ``optimizer``, ``split_rank_only``,
    ``cosim optimize``) refuses a mismatch that changes what a round of training does;
    ``uses_pilot="reports"`` (a replay's held-out accuracy and loss only) warns, since the timing is
    right and only the accuracy is the pilot's; None compares nothing.
    """
    problems, warnings = [], []
    measured = (("model.name", sc.model.name, profile.get("model")),
                ("training.batch_size", sc.training.batch_size, profile.get("batch_size")),
                ("training.seq_len", sc.training.seq_len, profile.get("seq_len")),
                ("split.activation_dtype", sc.split.activation_dtype, profile.get("activation_dtype", "float32")))
    for key, want, got in measured:
        if want != got:
            problems.append(f"{source} was measured with {key}={got} (the scenario has {want})")
    targets = (profile.get("lora") or {}).get("target_modules")
    want_targets = list(sc.lora.target_modules) if sc.lora.target_modules is not None else None
    if "lora" in profile and targets != want_targets:
        problems.append(f"{source} was measured with lora.target_modules={targets} (the scenario has {want_targets})")
    cuts, ranks = profile["costs"]["cuts"].tolist(), profile["costs"]["ranks"].tolist()
    if sc.workload.kind == "replay" or sc.allocation.policy in PILOT_POLICIES:
        if sc.split.cut_layer not in cuts:
            problems.append(f"{source} lacks split.cut_layer={sc.split.cut_layer} (cuts {cuts})")
        if sc.lora.rank not in ranks:
            problems.append(f"{source} lacks lora.rank={sc.lora.rank} (ranks {ranks})")
    if sc.workload.kind == "replay" and (profile["server_adapter_bytes"] is None
                                        or profile["adapter_element_bytes"] is None):
        problems.append(f"{source} has no server_adapter_bytes (written by an older `cosim profile`); profile again")
    pilot = profile.get("pilot")
    if uses_pilot and pilot:
        for key, path, refuse in PILOT_SETTINGS:
            if key in pilot and pilot[key] != setting(sc, path):
                text = (f"{source}: its pilot runs had {path}={pilot[key]} (the scenario has {setting(sc, path)})")
                if refuse and uses_pilot == "decides":
                    problems.append(text + ": rounds(rank) and the pilot's accuracy do not apply; profile again "
                                           "with the scenario's settings")
                elif refuse:
                    warnings.append(text + ": the replay's held-out accuracy and loss are the pilot's, not this "
                                           "scenario's")
                else:
                    warnings.append(text + ": rounds(rank) are taken from the pilot as they are")
    return problems, warnings


def file_problems(sc) -> tuple[list[str], list[str]]:
    """Every problem (and warning) of ``sc`` against its model and its ``workload.profile``."""
    problems, warnings = model_problems(sc), []
    path = sc.workload.profile
    if path is None:
        return problems, warnings
    try:
        profile = read_profile_once(path)
    except CosimError as exc:
        lines = getattr(exc, "problems", None) or [str(exc)]
        resolved = str(Path(path).resolve())     # the file is read (and named) by its resolved path
        lines = [f"{path}{t[len(resolved):]}" if t.startswith(resolved) else t for t in lines]
        return problems + [f"workload.profile: {t if t.startswith(str(path)) else f'{path}: {t}'}"
                           for t in lines], warnings
    uses_pilot = ("decides" if sc.allocation.policy in PILOT_POLICIES else
                  "reports" if sc.workload.kind == "replay" else None)
    more, warned = profile_problems(sc, profile, str(path), uses_pilot=uses_pilot)
    return problems + [f"workload.profile: {p}" for p in more], warnings + [f"workload.profile: {w}" for w in warned]
