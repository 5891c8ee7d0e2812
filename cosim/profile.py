"""Profiling a scenario's model: the cost table (FLOPs and bytes per cut and rank) the joint optimizer reads.

The measurement itself lives in :func:`llm_split.profile.profile_costs` (torch);
this module picks its inputs from a scenario -- model, LoRA alpha, dropout and
target modules, batch size, sequence length, a real encoded batch of the task --
and turns the result into JSON and a table. torch is imported only inside
:func:`profile_scenario`.

With ``pilot_rounds`` > 0 it also measures convergence: for each pilot rank, a
short real training run of the scenario (``run_scenario`` with
``lora.rank``, ``training.rounds`` and ``training.eval_every=1`` overridden,
the real workload, into a temporary folder) gives the held-out loss and
accuracy after every round (round 0: before training). These curves are stored
under ``pilot``; :mod:`cosim.convergence` fits them and gives rounds-to-target
per rank.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from .convergence import Convergence, Target
from .profile_file import ARRAYS as _ARRAYS, profile_convergence, read_profile  # noqa: F401 - re-exported
from .errors import CosimError
from .scenario import Scenario

DEFAULT_RANKS = (4, 8, 16, 32, 64)



def profile_scenario(sc: Scenario, *, cuts=None, ranks=None, pilot_rounds: int = 0, pilot_ranks=None,
                     target: Target | None = None, on_stage: Callable[[str], None] | None = None,
                     on_round: Callable[[int, int], None] | None = None) -> dict:
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
    pilot_rounds : int
        Rounds of each pilot training run (0: no pilot, no convergence curves).
    pilot_ranks : sequence of int or None
        Ranks that get a pilot run; None: every candidate rank.
    target : cosim.convergence.Target or None
        What "converged" means for rounds-to-target; None: the default
        (the loss the best pilot rank reaches at its last pilot round).
    on_stage : callable(str), optional
        Told what is being measured (progress).
    on_round : callable(rank, round), optional
        Called after each pilot round (``round`` counts from 1), for a progress bar.

    Returns
    -------
    dict
        ``model``, ``n_layers``, ``task``, ``batch_size``, ``seq_len``, ``activation_dtype``,
        ``lora`` (alpha, dropout, target_modules), ``costs``: the
        ``solver.CostTable`` fields as numpy arrays (``solver.CostTable(**result["costs"])``),
        ``server_adapter_bytes`` (C, Rk), ``adapter_element_bytes``, and
        ``pilot`` (see :class:`cosim.convergence.Convergence`) or None.

    Raises
    ------
    CosimError
        Cuts outside ``1 .. L-1``, ranks below 1, or a model or task that cannot be loaded.
    """
    from llm_split import LoraSettings, PromptEncoder, load_causal_lm, load_task, num_layers
    from llm_split.profile import profile_costs_and_adapters
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

    stage = on_stage or (lambda text: None)
    stage(f"cost table: {len(cuts)} cuts x {len(ranks)} ranks")
    costs, adapters = profile_costs_and_adapters(factory, cuts=cuts, ranks=ranks, lora=lora, batch=batch,
                                                 cut_dtype=sc.split.activation_dtype)
    pilot = None
    if pilot_rounds:
        pilot_ranks = ranks if pilot_ranks is None else list(pilot_ranks)
        pilot = pilot_curves(sc, ranks=pilot_ranks, rounds=pilot_rounds, on_stage=stage, on_round=on_round)
        Convergence.from_pilot({**pilot, "target": None})  # refuse unusable curves now, not at read time
        pilot["target"] = (target or Target()).to_dict()
    return {"model": sc.model.name, "n_layers": n_layers, "task": sc.data.task,
            "batch_size": b, "seq_len": sc.training.seq_len, "activation_dtype": sc.split.activation_dtype,
            "lora": {"alpha": lora.alpha, "dropout": lora.dropout,
                     "target_modules": list(lora.target_modules) if lora.target_modules else None},
            "costs": costs, **adapters, "pilot": pilot}


def pilot_curves(sc: Scenario, *, ranks, rounds: int, on_stage: Callable[[str], None] | None = None,
                 on_round: Callable[[int, int], None] | None = None) -> dict:
    """Held-out loss and accuracy per round of a short real training run of ``sc`` at each rank.

    Each run is ``sc`` with ``lora.rank``, ``training.rounds=rounds``,
    ``training.eval_every=1`` and the real workload, written into a temporary
    folder that is removed afterwards.

    Returns
    -------
    dict
        ``rounds``, ``ranks``, and the training settings of the runs: ``clients``,
        ``local_iterations``, ``seed``, ``cut_layer``, ``test_size`` (held-out
        examples per evaluation), ``lr``, ``weight_decay``, ``task``, ``partition``,
        ``lora_alpha`` (checked against a scenario that uses the curves:
        :data:`cosim.scenario.validate.PILOT_SETTINGS`), and
        ``eval_loss`` / ``accuracy``: rank (as a string, JSON keys) -> ``rounds + 1``
        values, index 0 before training, index t after round t.
    """
    import pandas as pd

    from .run import run_scenario
    from .scenario.schema import Workload

    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise CosimError(f"--pilot-rounds: expected an integer >= 1 (got {rounds!r})")
    stage = on_stage or (lambda text: None)
    round_done = on_round or (lambda rank, r: stage(f"pilot: rank {rank}: round {r}/{rounds} done"))
    curves: dict[str, dict[str, list[float]]] = {"eval_loss": {}, "accuracy": {}}
    with tempfile.TemporaryDirectory(prefix="cosim-pilot-") as tmp:
        for rank in ranks:
            stage(f"pilot: rank {rank}, {rounds} rounds")
            run_sc = dataclasses.replace(
                sc, lora=dataclasses.replace(sc.lora, rank=int(rank)),
                training=dataclasses.replace(sc.training, rounds=rounds, eval_every=1),
                allocation=dataclasses.replace(sc.allocation, policy="equal"),
                workload=Workload())
            out = Path(tmp) / f"rank{rank}"
            summary = run_scenario(run_sc, out, on_stage=lambda text, rank=rank: stage(f"pilot: rank {rank}: {text}"),
                                   on_round=lambda r, now_s, rank=rank: round_done(int(rank), r + 1))
            rows = pd.read_parquet(out / "rounds.parquet").sort_values("round")
            curves["eval_loss"][str(rank)] = [summary["before"]["loss"], *map(float, rows["eval_loss"])]
            curves["accuracy"][str(rank)] = [summary["before"]["accuracy"], *map(float, rows["accuracy"])]
    return {"rounds": rounds, "ranks": [int(r) for r in ranks], "clients": sc.clients.count,
            "local_iterations": sc.training.local_iterations, "seed": sc.seed,
            "cut_layer": sc.split.cut_layer, "test_size": int(summary["before"]["n"]),
            "lr": sc.training.lr, "weight_decay": sc.training.weight_decay, "task": sc.data.task,
            "partition": sc.data.partition, "lora_alpha": sc.lora.alpha, **curves}


def profile_to_json(result: dict) -> str:
    """The result of :func:`profile_scenario` as JSON (arrays as nested lists)."""
    costs = {name: np.asarray(result["costs"][name]).tolist() for name in _ARRAYS}
    out = {**result, "costs": costs}
    if result.get("server_adapter_bytes") is not None:
        out["server_adapter_bytes"] = np.asarray(result["server_adapter_bytes"]).tolist()
    return json.dumps(out, indent=2) + "\n"


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
    text = "\n".join(lines) + "\n"
    conv = profile_convergence(result)
    if conv is None:
        return text + "# no pilot runs: every rank is taken to need the scenario's training.rounds\n"
    return text + conv.describe(ranks=c["ranks"])
