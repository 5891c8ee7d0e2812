"""A split trainer's state as plain data, to write into a checkpoint and load back.

Tensors, lists, dicts and numbers only, so ``torch.load(path, weights_only=True)``
reads it: every client's client-side adapter, every server-side adapter (one per
client under SFL-V1, one shared under SFL-V2) and every AdamW state.
"""

from __future__ import annotations

import torch

from llm_split import lora as lora_mod
from llm_split.trainer import SplitLoRATrainer


def trainer_state(trainer: SplitLoRATrainer) -> dict:
    """The adapters and AdamW states of ``trainer`` (no step may be in flight)."""
    if trainer._in_flight:
        raise ValueError(f"trainer_state while steps are in flight (clients {sorted(trainer._in_flight)})")
    return {"cut": trainer.cut_layer, "shared_server": trainer.shared_server,
            "client": [trainer.client_adapter_state(k) for k in range(trainer.n_clients)],
            "server": [{k: p.detach().clone() for k, p in lora_mod.adapter_parameters(trainer.server_part, n).items()}
                       for n in trainer.server_names],
            "client_optimizers": [opt.state_dict() for opt in trainer._client_optimizers],
            "server_optimizers": [opt.state_dict() for opt in trainer._server_optimizers]}


@torch.no_grad()
def load_trainer_state(trainer: SplitLoRATrainer, state: dict) -> None:
    """Continue ``trainer`` (the same model, cut, clients and rank) from :func:`trainer_state`'s ``state``."""
    if state["cut"] != trainer.cut_layer or state["shared_server"] != trainer.shared_server:
        raise ValueError(f"trainer state of cut {state['cut']} (shared server {state['shared_server']}) does not "
                         f"fit this trainer (cut {trainer.cut_layer}, shared server {trainer.shared_server})")
    for k in range(trainer.n_clients):
        trainer.set_client_adapter_state(k, state["client"][k])
    for name, adapter in zip(trainer.server_names, state["server"]):
        for key, param in lora_mod.adapter_parameters(trainer.server_part, name).items():
            param.copy_(adapter[key])
    for opt, sd in zip(trainer._client_optimizers + trainer._server_optimizers,
                       state["client_optimizers"] + state["server_optimizers"]):
        opt.load_state_dict(sd)
