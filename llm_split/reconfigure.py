"""A new cut or LoRA rank between rounds, with the training state carried over.

:func:`reconfigure` builds a new :class:`SplitLoRATrainer` on a copy of the old
trainer's base model (LoRA layers stripped, frozen weights unchanged) and moves
every client's adapters and AdamW moments into it:

- **A new cut** only moves whole blocks between the client part and the server
  part: each block's adapter weights (and their AdamW moments and step count)
  go to the part that now holds the block. The model computes exactly what it
  computed before.
- **A new rank** resizes every factor (A: (r, d_in), B: (d_out, r); the update
  is ``(alpha / r) B A``):

  * growing ``r -> r' > r`` keeps the first ``r`` rows of A and columns of B,
    takes the new rows of A as LoRA initialises them (the new trainer's
    initialisation, the same for every client) and zero new columns of B,
    and multiplies B by ``r' / r`` so that the scaled update, hence the model's
    output, is unchanged;
  * shrinking ``r -> r' < r`` re-factors the scaled update by a truncated SVD,
    ``(alpha / r) B A = U S V^T``, ``B' = U_r' sqrt(S_r' r' / alpha)``,
    ``A' = sqrt(S_r' r' / alpha) V_r'^T``: the best rank-r' approximation
    (Eckart-Young), with balanced factors. A component with a zero singular
    value (the update is zero before any training) takes A's row as LoRA
    initialises it and a zero column of B, so it can still learn (both factors
    zero would get no gradient).

  The AdamW moments of resized tensors start again from zero (their step count
  too); those of tensors whose shape is unchanged are kept.
"""

from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn

from llm_split import lora as lora_mod
from cosim.errors import CosimError
from llm_split.trainer import SplitLoRATrainer


def reconfigure(trainer: SplitLoRATrainer, *, cut: int, lora: lora_mod.LoraSettings, rank: int,
                seed: int = 0) -> SplitLoRATrainer:
    """A trainer cut at ``cut`` with rank ``rank`` that continues where ``trainer`` stands.

    Parameters
    ----------
    trainer : SplitLoRATrainer
        The trainer to continue; left untouched. No step may be in flight.
    cut : int
        The new cut (blocks on the client).
    lora : LoraSettings
        The adapters' alpha, dropout and target modules (its rank: the old one).
    rank : int
        The new rank.
    seed : int
        Seed of the new trainer's LoRA initialisation (the new rows of A when the rank grows).

    Raises
    ------
    CosimError
        If ``trainer`` shares one server-side adapter (SFL-V2): not carried over.

    Returns
    -------
    SplitLoRATrainer
        On a copy of the base model; the same clients, learning rate and weight decay.
    """
    if trainer.shared_server:
        raise CosimError("reconfigure: a trainer with one shared server-side adapter (SFL-V2) keeps its cut and rank")
    if trainer._in_flight:
        raise ValueError(f"reconfigure while steps are in flight (clients {sorted(trainer._in_flight)})")
    old_rank = lora.rank
    group = trainer.client_optimizer(0).param_groups[0]
    model = strip_lora(copy.deepcopy(trainer.model))
    new = SplitLoRATrainer(model, cut_layer=cut, lora=dataclasses.replace(lora, rank=rank),
                           n_clients=trainer.n_clients, lr=group["lr"], weight_decay=group["weight_decay"], seed=seed,
                           cut_dtype=trainer.cut_dtype)
    new.model.train(trainer.model.training)
    scale_old, scale_new = lora.alpha / old_rank, lora.alpha / rank
    for k in range(trainer.n_clients):
        old_params = _global_params(trainer, k)
        old_states = _optimizer_states(trainer, k)
        new_states = {}
        with torch.no_grad():
            for key, param in _global_params(new, k).items():
                a_key, b_key = _pair(key)
                old = old_params[key]
                if rank == old_rank:
                    param.copy_(old)
                    if old in old_states:
                        new_states[param] = copy.deepcopy(old_states[old])
                elif rank > old_rank:
                    if key == a_key:
                        param[:old_rank].copy_(old)  # rows old_rank.. keep the new LoRA initialisation
                    else:
                        param.zero_()
                        param[:, :old_rank].copy_(old * (scale_old / scale_new))
                else:
                    b, a = _truncated_factors(scale_old * old_params[b_key] @ old_params[a_key], rank, scale_new)
                    if key == a_key:
                        # A component the update does not use (a zero singular value, e.g. before any
                        # training) keeps LoRA's initialisation, so that it can still learn.
                        unused = a.norm(dim=1) == 0
                        param.copy_(torch.where(unused[:, None], param, a))
                    else:
                        param.copy_(b)
        for opt in (new.client_optimizer(k), new.server_optimizer(k)):
            for p in opt.param_groups[0]["params"]:
                if p in new_states:
                    opt.state[p] = new_states[p]
    return new


def strip_lora(model: nn.Module) -> nn.Module:
    """Replace every LoRA layer of ``model`` (in place) by the layer it wraps; returns ``model``."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, BaseTunerLayer):
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, module.get_base_layer())
    return model


def _global_params(trainer: SplitLoRATrainer, client: int) -> dict[str, nn.Parameter]:
    """Client ``client``'s adapter weights on both parts, keyed by the block's index in the whole model."""
    out = {}
    for part, params in ((trainer.client_part, trainer.client_parameters(client)),
                         (trainer.server_part, trainer.server_parameters(client))):
        for key, param in params.items():
            head, index, rest = key.split(".", 2)  # "blocks", local index, the rest
            out[f"{head}.{int(index) + part.first_layer}.{rest}"] = param
    return out


def _optimizer_states(trainer: SplitLoRATrainer, client: int) -> dict:
    states = {}
    for opt in (trainer.client_optimizer(client), trainer.server_optimizer(client)):
        states.update({p: s for p, s in opt.state.items() if s})
    return states


def _pair(key: str) -> tuple[str, str]:
    """The lora_A and lora_B keys of the module that ``key`` belongs to."""
    base = key.replace(".lora_A.", ".lora_X.").replace(".lora_B.", ".lora_X.")
    return base.replace(".lora_X.", ".lora_A."), base.replace(".lora_X.", ".lora_B.")


def _truncated_factors(update: torch.Tensor, rank: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """B (d_out, rank), A (rank, d_in) with ``scale B A`` the best rank-``rank`` approximation of ``update``."""
    u, s, vh = torch.linalg.svd(update.double(), full_matrices=False)
    s = torch.where(s > s.max() * 1e-12, s, torch.zeros_like(s))  # numerically zero components: exactly zero
    root = torch.sqrt(s[:rank] / scale)
    b, a = u[:, :rank] * root, root[:, None] * vh[:rank]
    if b.shape[1] < rank:  # fewer singular values than the rank (d_out or d_in < rank): pad with zeros
        b = torch.nn.functional.pad(b, (0, rank - b.shape[1]))
        a = torch.nn.functional.pad(a, (0, 0, 0, rank - a.shape[0]))
    return b.to(update.dtype), a.to(update.dtype)


__all__ = ["reconfigure", "strip_lora"]
