"""The cost table of the joint optimizer, measured on the real modules for every candidate cut and rank.

FLOPs are additive over blocks, so each rank costs one measured split step and
one forward and backward of every block, not one step per cut. For a rank, a
fresh model is split at cut 1 by :class:`SplitLoRATrainer` and its step is
measured (``CF_1``, ``S_1``, ``CB_1``, as :meth:`SplitLoRATrainer.step_flops`
counts them); then each block ``i >= 1`` is run alone, forward ``f_i`` and
backward ``b_i`` (its input a leaf that needs a gradient, as on either side of
any cut ``c > i``). Moving the cut from 1 to ``c`` moves blocks ``1 .. c-1`` to
the client:

    client_forward(c)  = CF_1 + sum_{i=1}^{c-1} f_i
    client_backward(c) = CB_1 + sum_{i=1}^{c-1} b_i
    server(c)          = S_1  - sum_{i=1}^{c-1} (f_i + b_i)

Bytes are those of the real tensors (:mod:`llm_split.payload`): the uplink
carries the hidden state (B, T, H), encoded as the cut dtype says
(:mod:`llm_split.compress`; float32: the model's dtype), plus the mask and the
labels, the downlink the gradient of the hidden state (encoded the same way), and a client's adapter
upload is the LoRA weights of its blocks ``0 .. c-1``; the main server's
copy of a client's adapter (averaged each round too) is that of blocks
``c .. L-1`` (:func:`profile_adapters`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from cosim.errors import CosimError
from llm_split import lora as lora_mod
from llm_split.flops import FlopCounter
from llm_split.models import num_layers
from llm_split.payload import state_dict_nbytes
from llm_split.split import ServerPart
from llm_split.trainer import SplitLoRATrainer

COST_FIELDS = ("cuts", "ranks", "client_forward_flops", "client_backward_flops", "server_flops",
               "activation_bytes", "gradient_bytes", "client_adapter_bytes")


def profile_costs(
    model_factory: Callable[[], nn.Module],
    *,
    cuts: Sequence[int],
    ranks: Sequence[int],
    lora: lora_mod.LoraSettings,
    batch: Mapping[str, torch.Tensor],
    cut_dtype: str = "float32",
) -> dict[str, np.ndarray]:
    """FLOPs and payload bytes of one split LoRA step for every ``(cut, rank)``.

    Parameters
    ----------
    model_factory : callable
        Returns a new causal LM on each call (one per rank: LoRA is injected in place).
    cuts : sequence of int, (C,)
        Candidate cuts, distinct, each in ``1 .. num_layers - 1``.
    ranks : sequence of int, (Rk,)
        Candidate LoRA ranks, distinct, each >= 1.
    lora : LoraSettings
        Alpha, dropout and target modules; its ``rank`` is ignored.
    batch : mapping of str to Tensor
        ``input_ids``, ``attention_mask``, ``labels``, each (B, T): one client
        batch (FLOPs depend on its shape only; bytes on shapes and dtypes).
    cut_dtype : str
        How the activations and their gradient cross the cut (:mod:`llm_split.compress`):
        ``activation_bytes`` and ``gradient_bytes`` are the encoded payload's.

    Returns
    -------
    dict of str to numpy.ndarray
        The fields of ``solver.CostTable``: ``cuts`` and ``ranks`` (int64),
        ``client_forward_flops``, ``client_backward_flops``, ``server_flops`` and
        ``client_adapter_bytes`` (C, Rk), ``activation_bytes`` and
        ``gradient_bytes`` (C,), all float64, FLOPs and bytes.

    Raises
    ------
    CosimError
        Cuts or ranks that are not distinct integers in range.
    """
    return profile_costs_and_adapters(model_factory, cuts=cuts, ranks=ranks, lora=lora, batch=batch,
                                      cut_dtype=cut_dtype)[0]


def profile_costs_and_adapters(
    model_factory: Callable[[], nn.Module],
    *,
    cuts: Sequence[int],
    ranks: Sequence[int],
    lora: lora_mod.LoraSettings,
    batch: Mapping[str, torch.Tensor],
    cut_dtype: str = "float32",
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray | float]]:
    """:func:`profile_costs` and, from the same measurement, the server side's adapter sizes.

    Returns
    -------
    costs : dict of str to numpy.ndarray
        As :func:`profile_costs`.
    adapters : dict
        ``server_adapter_bytes`` (C, Rk): the LoRA weights of blocks ``cut .. L-1``
        that the main server keeps (and averages) per client; ``adapter_element_bytes``:
        bytes per adapter weight (4 for float32), so that the averaging FLOPs
        ``2 K (client + server bytes) / element bytes`` follow.
    """
    cuts, ranks = _check_grid("cuts", cuts, 1), _check_grid("ranks", ranks, 1)
    n_cuts, n_ranks = len(cuts), len(ranks)
    out = {name: np.zeros((n_cuts, n_ranks)) for name in COST_FIELDS[2:5] + ("client_adapter_bytes",)}
    server_adapter = np.zeros((n_cuts, n_ranks))
    for r, rank in enumerate(ranks):
        model = model_factory()
        n_layers = num_layers(model)
        if r == 0 and not all(c < n_layers for c in cuts):
            raise CosimError(f"cuts: expected integers in 1..{n_layers - 1}, the model has {n_layers} blocks "
                             f"(got {', '.join(str(c) for c in cuts if c >= n_layers)})")
        per_rank = _profile_rank(model, rank=rank, lora=dataclasses.replace(lora, rank=rank), batch=batch,
                                 last_cut=max(cuts), cut_dtype=cut_dtype)
        for c, cut in enumerate(cuts):
            moved = slice(1, cut)  # blocks that leave the server when the cut moves from 1 to `cut`
            f, b = per_rank["block_forward"][moved].sum(), per_rank["block_backward"][moved].sum()
            out["client_forward_flops"][c, r] = per_rank["client_forward"] + f
            out["client_backward_flops"][c, r] = per_rank["client_backward"] + b
            out["server_flops"][c, r] = per_rank["server"] - f - b
            out["client_adapter_bytes"][c, r] = per_rank["block_adapter_bytes"][:cut].sum()
            server_adapter[c, r] = per_rank["block_adapter_bytes"][cut:].sum()
        activation, gradient = per_rank["activation_bytes"], per_rank["gradient_bytes"]
    costs = {"cuts": np.array(cuts, dtype=np.int64), "ranks": np.array(ranks, dtype=np.int64), **out,
             "activation_bytes": np.full(n_cuts, float(activation)),
             "gradient_bytes": np.full(n_cuts, float(gradient))}
    return costs, {"server_adapter_bytes": server_adapter,
                   "adapter_element_bytes": float(per_rank["adapter_element_bytes"])}


def synthetic_batch(*, vocab_size: int, batch_size: int, seq_len: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tokens in ``0 .. vocab_size-1``, no padding, every position labelled: (B, T) int64 each.

    Enough for FLOPs (shape-only) and bytes (shape and dtype); use a real
    encoded batch where the content matters.
    """
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, vocab_size, (batch_size, seq_len), generator=g)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": input_ids.clone()}


def _profile_rank(model: nn.Module, *, rank: int, lora: lora_mod.LoraSettings,
                  batch: Mapping[str, torch.Tensor], last_cut: int, cut_dtype: str) -> dict:
    """Measured step at cut 1, per-block FLOPs of blocks 1 .. last_cut-1, per-block adapter bytes."""
    trainer = SplitLoRATrainer(model, cut_layer=1, lora=lora, n_clients=1, lr=1e-3, cut_dtype=cut_dtype)
    step = trainer.step_flops(batch)  # leaves no trace on the model
    device = next(model.parameters()).device
    input_ids, mask, labels = (batch[k].to(device) for k in ("input_ids", "attention_mask", "labels"))
    with torch.random.fork_rng(devices=[]):  # LoRA dropout draws stay off the caller's stream
        hidden = trainer.client_part(input_ids, attention_mask=mask).detach()  # (B, T, H) at cut 1
        forward, backward = _block_flops(trainer.server_part, hidden, mask, n_blocks=last_cut - 1)
    name = lora_mod.SLOT  # the one adapter of each part, holding the (only) client's weights
    blocks = [*trainer.client_part.blocks, *trainer.server_part.blocks]
    if sum(len(lora_mod.adapter_parameters(b, name)) for b in blocks) != len(trainer.server_adapter_state(0)) + len(
            trainer.client_adapter_state(0)):
        raise CosimError("lora.target_modules: adapters outside the transformer blocks (e.g. on the head) "
                         "are not profiled per cut")
    return {
        "client_forward": step.client_forward, "client_backward": step.client_backward,
        "server": step.server_forward_backward,
        # index i: block i (block 0 has no entry: it is always on the client)
        "block_forward": np.array([0, *forward], dtype=np.float64),
        "block_backward": np.array([0, *backward], dtype=np.float64),
        "block_adapter_bytes": np.array([state_dict_nbytes(lora_mod.adapter_parameters(b, name)) for b in blocks],
                                        dtype=np.float64),
        "adapter_element_bytes": trainer.adapter_element_size(),
        # What crosses the cut, as the trainer's steps report it (the gradient has the hidden state's shape).
        **{f"{k}_bytes": v for k, v in trainer.cut_message_nbytes(batch).items()},
    }


def _block_flops(part: ServerPart, hidden: torch.Tensor, mask: torch.Tensor,
                 n_blocks: int) -> tuple[list[int], list[int]]:
    """Forward and backward FLOPs of the first ``n_blocks`` blocks of ``part``, each run alone.

    Each block gets what ``part`` gives it (its mask, positions, rotary
    embeddings, built as ``_Part._run_blocks`` builds them, outside the counter)
    and a fresh leaf input, so its backward includes the input gradient.
    """
    position_ids = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0)  # (1, T)
    masks = part._masks(hidden, mask, position_ids)
    kwargs = {"position_ids": position_ids}
    if part.rotary is not None:
        kwargs["position_embeddings"] = part.rotary(hidden, position_ids=position_ids)
    forward, backward = [], []
    for block_mask, block in list(zip(masks, part.blocks))[:n_blocks]:
        x = hidden.requires_grad_(True)
        with FlopCounter() as counter:
            out = block(x, attention_mask=block_mask, **kwargs)  # (B, T, H)
        forward.append(counter.total)
        with FlopCounter() as counter:
            out.backward(torch.ones_like(out))
        backward.append(counter.total)
        hidden = out.detach()
    return forward, backward


def _check_grid(name: str, values: Sequence[int], lower: int) -> list[int]:
    values = list(values)
    if (not values or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lower for v in values)
            or len(set(values)) != len(values)):
        raise CosimError(f"{name}: expected distinct integers >= {lower} (got {values})")
    return [int(v) for v in values]
