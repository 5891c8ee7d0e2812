"""Profiling a scenario's model: the cost table (FLOPs and bytes per cut and rank) the joint optimizer reads.

The measurement itself lives in :func:`llm_split.profile.profile_costs` (torch);
this module picks its inputs from a scenario -- model, LoRA alpha, dropout and
target modules, batch size, sequence length, a real encoded batch of the task --
and turns the result into JSON and a table. torch is imported only inside
:func:`profile_scenario`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import CosimError
from .scenario import Scenario

DEFAULT_RANKS = (4, 8, 16, 32, 64)

_ARRAYS = ("cuts", "ranks", "client_forward_flops", "client_backward_flops", "server_flops",
           "activation_bytes", "gradient_bytes", "client_adapter_bytes")


def profile_scenario(sc: Scenario, *, cuts=None, ranks=None) -> dict:
    """Measure the cost table of ``sc``'s model for every candidate cut and rank.

    Parameters
    ----------
    sc : Scenario
        Gives the model, ``training.batch_size`` and ``seq_len``, the LoRA
        alpha, dropout and target modules (not its rank), and the task whose
        first training examples form the measured batch.
    cuts : sequence of int or None
        Candidate cuts; None: every valid cut ``1 .. L-1``.
    ranks : sequence of int or None
        Candidate ranks; None: :data:`DEFAULT_RANKS`.

    Returns
    -------
    dict
        ``model``, ``n_layers``, ``task``, ``batch_size``, ``seq_len``,
        ``lora`` (alpha, dropout, target_modules), and ``costs``: the
        ``solver.CostTable`` fields as numpy arrays (``solver.CostTable(**result["costs"])``).

    Raises
    ------
    CosimError
        Cuts outside ``1 .. L-1``, ranks below 1, or a model or task that cannot be loaded.
    """
    from llm_split import LoraSettings, PromptEncoder, load_causal_lm, load_task, num_layers
    from llm_split.profile import profile_costs
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one model load per rank: no bar each time
    model, tokenizer = load_causal_lm(sc.model.name)
    n_layers = num_layers(model)
    cuts = list(range(1, n_layers)) if cuts is None else list(cuts)
    ranks = list(DEFAULT_RANKS) if ranks is None else list(ranks)
    bad_cuts = [c for c in cuts if not 0 < c < n_layers]
    if bad_cuts:
        raise CosimError(f"cuts: expected integers in 1..{n_layers - 1}, the cuts of {sc.model.name} "
                         f"({n_layers} blocks) (got {', '.join(map(str, bad_cuts))})")
    task = load_task(sc.data.task, test_size=sc.data.test_size, seed=sc.seed, max_train=sc.data.max_train)
    b = sc.training.batch_size
    if len(task.train_texts) < b:
        raise CosimError(f"training.batch_size: expected at most the {len(task.train_texts)} training "
                         f"examples (got {b})")
    encoder = PromptEncoder(tokenizer, task, seq_len=sc.training.seq_len)
    batch = encoder.encode(task.train_texts[:b], task.train_labels[:b])
    lora_kwargs = dict(alpha=sc.lora.alpha, dropout=sc.lora.dropout)
    if sc.lora.target_modules is not None:
        lora_kwargs["target_modules"] = tuple(sc.lora.target_modules)
    lora = LoraSettings(**lora_kwargs)

    fresh = [model]  # the model loaded above serves the first rank

    def factory():
        return fresh.pop() if fresh else load_causal_lm(sc.model.name)[0]

    costs = profile_costs(factory, cuts=cuts, ranks=ranks, lora=lora, batch=batch)
    return {"model": sc.model.name, "n_layers": n_layers, "task": sc.data.task,
            "batch_size": b, "seq_len": sc.training.seq_len,
            "lora": {"alpha": lora.alpha, "dropout": lora.dropout,
                     "target_modules": list(lora.target_modules) if lora.target_modules else None},
            "costs": costs}


def profile_to_json(result: dict) -> str:
    """The result of :func:`profile_scenario` as JSON (arrays as nested lists)."""
    costs = {name: np.asarray(result["costs"][name]).tolist() for name in _ARRAYS}
    return json.dumps({**result, "costs": costs}, indent=2) + "\n"


def read_profile(path: str | Path) -> dict:
    """Read a profile written by ``cosim profile --out``; ``costs`` holds numpy arrays again."""
    try:
        result = json.loads(Path(path).read_text())
        costs = result["costs"]
        result["costs"] = {name: np.asarray(costs[name], dtype=np.int64 if name in ("cuts", "ranks") else float)
                           for name in _ARRAYS}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CosimError(f"{path}: not a cosim profile ({type(exc).__name__}: {exc})") from exc
    return result


def format_profile(result: dict) -> str:
    """A readable table: one row per (cut, rank); GFLOP per step, KB (1000 bytes)."""
    c = result["costs"]
    lines = [f"# {result['model']} ({result['n_layers']} blocks), batch {result['batch_size']} x "
             f"{result['seq_len']} tokens, one split step per row",
             f"{'cut':>4} {'rank':>5} {'client fwd GFLOP':>17} {'client bwd GFLOP':>17} {'server GFLOP':>13} "
             f"{'activation KB':>14} {'gradient KB':>12} {'adapter KB':>11}"]
    for i, cut in enumerate(c["cuts"]):
        for j, rank in enumerate(c["ranks"]):
            lines.append(f"{cut:>4} {rank:>5} {c['client_forward_flops'][i, j] / 1e9:>17.4f} "
                         f"{c['client_backward_flops'][i, j] / 1e9:>17.4f} {c['server_flops'][i, j] / 1e9:>13.4f} "
                         f"{c['activation_bytes'][i] / 1e3:>14.1f} {c['gradient_bytes'][i] / 1e3:>12.1f} "
                         f"{c['client_adapter_bytes'][i, j] / 1e3:>11.1f}")
    return "\n".join(lines) + "\n"
