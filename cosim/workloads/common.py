"""What every torch workload sets up from a scenario: the model, the task, its partition and batch samplers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llm_split import (ClientBatches, LoraSettings, PromptEncoder, Task, load_causal_lm, load_task, num_layers,
                       partition_dirichlet, partition_iid)

from ..errors import ScenarioError
from ..scenario import Scenario
from ..seeding import stream


@dataclass
class ClientData:
    """The task, each client's training examples, their batch samplers and the prompt encoder."""

    task: Task
    client_indices: list[np.ndarray]
    samplers: list[ClientBatches]
    encoder: PromptEncoder


def runtime(sc: Scenario) -> dict:
    """Apply ``sc.runtime`` to torch: its intra-op threads; returns what the run uses (for ``summary.json``).

    ``device``: the one resolved from ``runtime.device`` (``auto``: cuda when torch sees a GPU).
    A device torch cannot use is a scenario error.
    """
    import torch

    rt = sc.runtime
    if rt.device == "cuda" and not torch.cuda.is_available():
        raise ScenarioError([f"runtime.device: expected 'cpu' or 'auto' here: torch sees no GPU "
                             f"(torch {torch.__version__}, CUDA {torch.version.cuda or 'not built in'}) (got 'cuda')"])
    device = "cuda" if rt.device == "cuda" or (rt.device == "auto" and torch.cuda.is_available()) else "cpu"
    # Fixed, not cores / workers: the threads split a matmul's sums, so they change results in the last bits.
    torch.set_num_threads(rt.threads)
    return {"device": device, "base_dtype": rt.base_dtype, "threads": rt.threads}


def load_model(sc: Scenario):
    """The scenario's causal LM and tokenizer, and its number of blocks (no progress bars).

    The model is on ``runtime.device`` with its weights in ``runtime.base_dtype``; torch's threads are
    set (:func:`runtime`). Returns ``model, tokenizer, n_layers, runtime``.
    """
    import torch
    from transformers.utils import logging as hf_logging

    info = runtime(sc)
    hf_logging.disable_progress_bar()  # cosim draws its own progress bar
    model, tokenizer = load_causal_lm(sc.model.name, dtype=getattr(torch, sc.runtime.base_dtype))
    return model.to(info["device"]), tokenizer, num_layers(model), info


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


def cuda_rng_state() -> dict:
    """``{"cuda_rng": [...]}``, the GPUs' generators (LoRA dropout on ``runtime.device: cuda``), when torch
    has started CUDA; else ``{}`` (a checkpoint's part)."""
    import torch

    return {"cuda_rng": torch.cuda.get_rng_state_all()} if torch.cuda.is_initialized() else {}


def set_cuda_rng_state(state: dict) -> None:
    """Put back what :func:`cuda_rng_state` saved in ``state``, if anything."""
    import torch

    if "cuda_rng" in state:
        torch.cuda.set_rng_state_all(state["cuda_rng"])
