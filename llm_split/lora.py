"""LoRA settings and per-client adapters on a model part (with PEFT).

A part carries PEFT LoRA adapters by name. The split trainer injects one, the
*slot* (:data:`SLOT`), and swaps each client's own weights into it
(:mod:`llm_split.bank`); :func:`add_adapters` with several names and
:func:`activate` remain for code that keeps one PEFT adapter per name.

Why :func:`activate` re-enables gradients: PEFT's ``set_adapter`` sets
``requires_grad=False`` on the inactive adapters, and autograd silently skips
accumulating into a leaf whose ``requires_grad`` turned False after the graph
was built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from peft import LoraConfig, get_peft_model
from peft.tuners.tuners_utils import BaseTunerLayer, set_adapter
from torch import nn

from cosim.errors import CosimError

SLOT = "slot"
"""Name of the one PEFT adapter of a part whose weights the split trainer swaps per client."""

# Family (config.model_type) -> modules adapted by default: the query and value
# projections, as in the LoRA paper (Hu et al., 2021, section 7.1). GPT-2 and
# GPT-NeoX fuse q, k and v into one projection, which is adapted whole.
DEFAULT_TARGET_MODULES = {
    "llama": ("q_proj", "v_proj"),
    "mistral": ("q_proj", "v_proj"),
    "qwen2": ("q_proj", "v_proj"),
    "qwen3": ("q_proj", "v_proj"),
    "gpt2": ("c_attn",),
    "gpt_neox": ("query_key_value",),
}


@dataclass(frozen=True)
class LoraSettings:
    """LoRA hyper-parameters, checked once.

    The adapted weight is ``W + (alpha / rank) * B @ A`` with ``A`` (rank, d_in)
    random and ``B`` (d_out, rank) zero at the start (Hu et al., 2021).

    Parameters
    ----------
    rank : int
        Rank ``r`` of the update, >= 1.
    alpha : float
        Scale numerator, > 0; the update is scaled by ``alpha / rank``.
    dropout : float
        Dropout on the adapter's input, in [0, 1).
    target_modules : tuple of str or None
        Names (suffixes) of the linear modules to adapt; None takes the family's
        default from :data:`DEFAULT_TARGET_MODULES` (q and v projections;
        ``c_attn`` for GPT-2, ``query_key_value`` for GPT-NeoX).
    """

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] | None = None

    def __post_init__(self):
        problems = []
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            problems.append(f"lora rank(={self.rank!r}) must be an integer >= 1")
        if not isinstance(self.alpha, (int, float)) or not self.alpha > 0:
            problems.append(f"lora alpha(={self.alpha!r}) must be > 0")
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            problems.append(f"lora dropout(={self.dropout!r}) must be in [0, 1)")
        if self.target_modules is not None:
            targets = self.target_modules
            if isinstance(targets, str) or not targets or not all(isinstance(t, str) and t for t in targets):
                problems.append(f"lora target_modules(={targets!r}) must be a non-empty list of module names")
            else:
                object.__setattr__(self, "target_modules", tuple(targets))
        if problems:
            raise CosimError("; ".join(problems))

    def peft_config(self, model_type: str) -> LoraConfig:
        """The PEFT ``LoraConfig`` for a model family (``config.model_type``)."""
        targets = self.target_modules or DEFAULT_TARGET_MODULES.get(model_type)
        if targets is None:
            raise CosimError(
                f"no default LoRA target modules for model_type {model_type!r}; set lora target_modules"
            )
        return LoraConfig(
            r=self.rank,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(targets),
            # GPT-2's Conv1D stores its weight as (d_in, d_out).
            fan_in_fan_out=model_type == "gpt2",
            bias="none",
        )


def add_adapters(part: nn.Module, config: LoraConfig, names: Sequence[str]) -> None:
    """Inject one LoRA adapter per name into ``part`` (in place), the first one active.

    Base weights end frozen; every adapter's weights are trainable.
    """
    present = {name.rsplit(".", 1)[-1] for name, _ in part.named_modules()}
    if not present & set(config.target_modules):
        raise CosimError(
            f"LoRA target modules {sorted(config.target_modules)} match no module of the "
            f"{type(part).__name__} of a {part.config.model_type} model"
        )
    peft_model = get_peft_model(part, config, adapter_name=names[0])
    for name in names[1:]:
        peft_model.add_adapter(name, config)
    activate(part, names[0])


def activate(part: nn.Module, name: str) -> None:
    """Make ``name`` the adapter used by the forward passes of ``part``."""
    set_adapter(part, name)
    for param in lora_parameters(part):  # undo set_adapter's requires_grad=False (see module doc)
        param.requires_grad_(True)


def lora_parameters(part: nn.Module) -> list[nn.Parameter]:
    """Every adapter's LoRA weights in ``part``."""
    return [p for module in part.modules() if isinstance(module, BaseTunerLayer)
            for name, p in module.named_parameters(recurse=True) if "lora_" in name]


def adapter_parameters(part: nn.Module, name: str) -> dict[str, nn.Parameter]:
    """The LoRA weights of adapter ``name`` in ``part``, keyed without the adapter name.

    Keys are like ``"blocks.0.self_attn.q_proj.lora_A.weight"``, the same for
    every client, in a fixed order.
    """
    marker = f".{name}."
    return {
        key.replace(marker, "."): param
        for key, param in part.named_parameters()
        if marker in key and (".lora_A." in key or ".lora_B." in key)
    }


@torch.no_grad()
def copy_adapter(part: nn.Module, source: str, target: str) -> None:
    """Overwrite adapter ``target`` with the values of adapter ``source``."""
    src = adapter_parameters(part, source)
    for key, param in adapter_parameters(part, target).items():
        param.copy_(src[key])


def skip_adapter_draws(part: nn.Module, name: str, count: int) -> None:
    """Advance torch's CPU generator as PEFT creating ``count`` more adapters like ``name`` would.

    PEFT draws a new adapter's ``lora_A`` twice (``nn.Linear``'s own init, then LoRA's
    kaiming init) and its ``lora_B`` once (``nn.Linear``'s init, then zeroed): one 32-bit
    draw per float32 value. Skipping them keeps the adapters that a trainer creates
    next (its server part's) what they were when every client had a PEFT adapter of
    its own (tested against that in ``tests/llm_split/test_bank.py``).
    """
    per_adapter = sum((2 if ".lora_A." in key else 1) * p.numel() for key, p in adapter_parameters(part, name).items())
    left = count * per_adapter
    chunk = torch.empty(min(left, 1 << 20))
    while left > 0:  # in chunks: a million clients' draws need no memory
        n = min(left, chunk.numel())
        chunk[:n].uniform_()
        left -= n
