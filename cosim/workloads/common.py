"""What every torch workload sets up from a scenario: the model, the task, its partition and batch samplers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llm_split import (ClientBatches, LoraSettings, PromptEncoder, Task, load_causal_lm, load_task, num_layers,
                       partition_dirichlet, partition_iid)

from ..scenario import Scenario
from ..seeding import stream


@dataclass
class ClientData:
    """The task, each client's training examples, their batch samplers and the prompt encoder."""

    task: Task
    client_indices: list[np.ndarray]
    samplers: list[ClientBatches]
    encoder: PromptEncoder


def load_model(sc: Scenario):
    """The scenario's causal LM and tokenizer, and its number of blocks (no progress bars)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # cosim draws its own progress bar
    model, tokenizer = load_causal_lm(sc.model.name)
    return model, tokenizer, num_layers(model)


def client_data(sc: Scenario, tokenizer) -> ClientData:
    """Load the task, partition it over the clients and give each its own batch stream."""
    task = load_task(sc.data.task, test_size=sc.data.test_size, seed=sc.seed, max_train=sc.data.max_train)
    k = sc.clients.count
    rng = stream(sc.seed, "data", "partition")
    if sc.data.partition == "iid":
        parts = partition_iid(len(task.train_texts), k, rng)
    else:
        parts = partition_dirichlet(task.train_labels, k, sc.data.dirichlet_alpha, rng)
    encoder = PromptEncoder(tokenizer, task, seq_len=sc.training.seq_len)
    samplers = [ClientBatches(parts[i], sc.training.batch_size, stream(sc.seed, "data", "batches", i))
                for i in range(k)]
    return ClientData(task=task, client_indices=parts, samplers=samplers, encoder=encoder)


def lora_settings(sc: Scenario, rank: int | None = None) -> LoraSettings:
    """The scenario's LoRA settings, with ``rank`` instead of ``lora.rank`` when given."""
    kwargs = dict(rank=sc.lora.rank if rank is None else rank, alpha=sc.lora.alpha, dropout=sc.lora.dropout)
    if sc.lora.target_modules is not None:
        kwargs["target_modules"] = tuple(sc.lora.target_modules)
    return LoraSettings(**kwargs)
