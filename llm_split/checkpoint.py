"""A split trainer's state as plain data, to write into a checkpoint and load back.

Tensors, lists, dicts and numbers only, so ``torch.load(path, weights_only=True)``
reads it: every client's client-side adapter, every server-side adapter (one per
client under SFL-V1, one shared under SFL-V2) and every AdamW state.
"""

from __future__ import annotations

import torch

from llm_split.trainer import SplitLoRATrainer, _Flight


def trainer_state(trainer: SplitLoRATrainer, *, in_flight: bool = False) -> dict:
    """The adapters and AdamW states of ``trainer``.

    With ``in_flight``, also the steps between a client's forward and its backward, as what recomputes
    their graphs (inputs and the random state each forward started from: the recomputation is exact);
    without it, no step may be in flight.
    """
    if trainer._in_flight and not in_flight:
        raise ValueError(f"trainer_state while steps are in flight (clients {sorted(trainer._in_flight)})")
    client, server = trainer.client_bank, trainer.server_bank
    return {"cut": trainer.cut_layer, "shared_server": trainer.shared_server,
            "client": [client.state(k) for k in range(len(client))],
            "server": [server.state(k) for k in range(len(server))],
            "client_optimizers": [opt.state_dict() for opt in client.optimizers],
            "server_optimizers": [opt.state_dict() for opt in server.optimizers],
            "in_flight": {k: {"input_ids": f.input_ids, "attention_mask": f.attention_mask,
                              "rng_states": list(f.rng_states)} for k, f in trainer._in_flight.items()}}


@torch.no_grad()
def load_trainer_state(trainer: SplitLoRATrainer, state: dict) -> None:
    """Continue ``trainer`` (the same model, cut, clients and rank) from :func:`trainer_state`'s ``state``."""
    if state["cut"] != trainer.cut_layer or state["shared_server"] != trainer.shared_server:
        raise ValueError(f"trainer state of cut {state['cut']} (shared server {state['shared_server']}) does not "
                         f"fit this trainer (cut {trainer.cut_layer}, shared server {trainer.shared_server})")
    for bank, side in ((trainer.client_bank, "client"), (trainer.server_bank, "server")):
        for owner, adapter in enumerate(state[side]):
            bank.load(owner, adapter)
        for opt, sd in zip(bank.optimizers, state[f"{side}_optimizers"]):
            opt.load_state_dict(sd)
    trainer._in_flight = {int(k): _Flight(None, f["input_ids"], f["attention_mask"], list(f["rng_states"]))
                          for k, f in state.get("in_flight", {}).items()}
