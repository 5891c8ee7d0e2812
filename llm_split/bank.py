"""Each owner's LoRA weights and AdamW state for one model part, swapped into one PEFT adapter.

The part carries a single PEFT LoRA adapter, the slot (:data:`llm_split.lora.SLOT`).
Every owner (a client, or the one shared server-side adapter) has its own copy of
the slot's weights, as leaf tensors, and its own AdamW. :meth:`AdapterBank.bind`
makes the slot's ``lora_A`` / ``lora_B`` linear layers hold owner ``k``'s tensors
(the very Parameter objects, not copies): a forward pass then computes with them,
and the graph it builds reaches only them, so binding another owner later changes
nothing in that graph and owners may interleave freely.

Why not one PEFT adapter per owner: each named adapter adds modules to every
adapted layer (about as much memory again as its weights), PEFT's ``set_adapter``
walks all of them, and finding one adapter's parameters walks every adapter's:
costs that grow with the number of clients at every step. Here an owner costs
its weights and their two AdamW moments, and binding costs one assignment per
LoRA matrix whatever the number of owners.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from llm_split.fedavg import fedavg_state_dicts
from llm_split.lora import SLOT


class AdapterBank:
    """Owners' LoRA weights and AdamW optimizers for the slot adapter of ``part``.

    Parameters
    ----------
    part : nn.Module
        A model part with the PEFT adapter ``slot`` injected; its weights become owner 0's.
    n_owners : int
        Owners 0 .. n_owners-1, all starting from the slot's weights.
    lr, weight_decay : float
        AdamW settings of every owner.
    slot : str
        Name of the PEFT adapter.
    """

    def __init__(self, part: nn.Module, *, n_owners: int, lr: float, weight_decay: float, slot: str = SLOT):
        marker = f".{slot}."
        # (key without the adapter name, the nn.Linear lora_A[slot] / lora_B[slot] holding it), in
        # named_parameters order: keys like "blocks.0.self_attn.q_proj.lora_A.weight".
        self._holders = [(name.replace(marker, "."), part.get_submodule(name.rsplit(".", 1)[0]))
                         for name, _ in part.named_parameters()
                         if marker in name and (".lora_A." in name or ".lora_B." in name)]
        first = {key: holder.weight for key, holder in self._holders}
        self.params: list[dict[str, nn.Parameter]] = [first] + [
            {key: nn.Parameter(p.detach().clone()) for key, p in first.items()} for _ in range(n_owners - 1)]
        self.optimizers = [torch.optim.AdamW(list(params.values()), lr=lr, weight_decay=weight_decay)
                           for params in self.params]
        self.bound = 0

    def __len__(self) -> int:
        return len(self.params)

    def bind(self, owner: int) -> None:
        """Make the slot compute with ``owner``'s weights (its Parameter objects)."""
        params = self.params[owner]
        for key, holder in self._holders:
            # What Module.__setattr__ does for a Parameter, without its checks: 2 per LoRA module per step.
            holder._parameters["weight"] = params[key]
        self.bound = owner

    def state(self, owner: int) -> dict[str, torch.Tensor]:
        """A copy of ``owner``'s weights."""
        return {key: p.detach().clone() for key, p in self.params[owner].items()}

    @torch.no_grad()
    def load(self, owner: int, state: Mapping[str, torch.Tensor]) -> None:
        """Overwrite ``owner``'s weights with ``state`` (same keys)."""
        params = self.params[owner]
        if sorted(params) != sorted(state):
            raise ValueError(f"adapter state keys {sorted(state)} do not match {sorted(params)}")
        for key, param in params.items():
            param.copy_(state[key])

    @torch.no_grad()
    def average(self, owners: Sequence[int], weights: Sequence[float]) -> None:
        """FedAvg of ``owners``' weights (:func:`llm_split.fedavg.fedavg_state_dicts`), then every owner holds it.

        Reads the live weights (no copy of each owner's state) and writes the average in place.
        """
        average = fedavg_state_dicts([{key: p.detach() for key, p in self.params[k].items()} for k in owners],
                                     weights)
        for params in self.params:
            for key, param in params.items():
                param.copy_(average[key])

    def nbytes(self) -> int:
        """Bytes of one owner's weights."""
        return sum(p.numel() * p.element_size() for p in self.params[0].values())
