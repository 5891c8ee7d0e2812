"""FLOPs of a split LoRA step: measured with torch's FLOP formulas, and the analytic estimate.

Measured: :class:`FlopCounter` applies torch's FLOP formulas (matmuls and
attention; elementwise work, norms and softmax are not counted, as usual), plus
formulas for the CPU attention kernel, which torch does not count itself.

Analytic (Kaplan et al. 2020; PaLM, Chowdhery et al. 2022, appendix B; the
nanoGPT estimate): a matmul with N weights costs 2N FLOPs per token forward and
2N backward for the gradient of its input; a weight gradient costs another 2N,
but frozen weights need none. So a LoRA step costs about 4NT, not 6NT.
Attention adds, per layer and sequence, 2 T x T x d matmuls forward and, in
FlashAttention's backward (which recomputes the scores), 5 of them.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry, sdpa_backward_flop_count, sdpa_flop_count, shape_wrapper

_aten = torch.ops.aten


@dataclass(frozen=True)
class StepFlops:
    """FLOPs of one split LoRA training step, by phase.

    Attributes
    ----------
    client_forward : int
        Embeddings and the client's blocks (on the device).
    server_forward_backward : int
        The server's blocks, head and loss, forward and backward (main server).
    client_backward : int
        Backward through the client's blocks (on the device).
    """

    client_forward: int
    server_forward_backward: int
    client_backward: int

    @property
    def total(self) -> int:
        """FLOPs of the whole step."""
        return self.client_forward + self.server_forward_backward + self.client_backward


def _grouped(query, key, value) -> tuple:
    """Shapes (B, H, T, D) of query, key and value, the key's and value's heads repeated to the query's:
    grouped-query attention (SmolLM2: 9 query heads, 3 key/value heads) costs what the repeated heads cost,
    and torch's formulas refuse the grouped heads a CUDA kernel is given (``enable_gqa``)."""
    q, k, v = (tuple(x.shape) if isinstance(x, torch.Tensor) else tuple(x) for x in (query, key, value))
    if len(q) == 4 and len(k) == 4 and k[1] != q[1] and k[1] and q[1] % k[1] == 0:
        k, v = (k[0], q[1], *k[2:]), (v[0], q[1], *v[2:])
    return tuple(torch.Size(x) for x in (q, k, v))


def _cpu_sdpa_flop(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(*_grouped(query, key, value))


def _cpu_sdpa_backward_flop(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, *_grouped(query, key, value))


# The fused CPU attention kernels (what SDPA runs on CPU), counted like the CUDA ones.
EXTRA_FLOP_FORMULAS = {
    op: formula
    for op, formula in {
        _aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flop,
        _aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_sdpa_backward_flop,
    }.items()
    if op not in flop_registry  # a later torch may count them itself
}

def _forward_gqa(formula):
    return lambda query, key, value, *args, **kwargs: formula(*_grouped(query, key, value), *args, **kwargs)


def _backward_gqa(formula):
    return lambda grad, query, key, value, *args, **kwargs: formula(grad, *_grouped(query, key, value), *args,
                                                                     **kwargs)


# op -> formula(*args, out_val=..., **kwargs) -> FLOPs, on tensors (shapes are read inside)
_FORMULAS = {**flop_registry, **{op: shape_wrapper(f) for op, f in EXTRA_FLOP_FORMULAS.items()}}
# The scaled-dot-product kernels take (B, H, T, D) tensors, query, key and value first (after the output's
# gradient in a backward); their formulas are given the grouped heads repeated (_grouped).
for _op, _wrap in {_aten._scaled_dot_product_efficient_attention: _forward_gqa,
                   _aten._scaled_dot_product_flash_attention: _forward_gqa,
                   _aten._scaled_dot_product_cudnn_attention: _forward_gqa,
                   _aten._scaled_dot_product_efficient_attention_backward: _backward_gqa,
                   _aten._scaled_dot_product_flash_attention_backward: _backward_gqa,
                   _aten._scaled_dot_product_cudnn_attention_backward: _backward_gqa}.items():
    if _op in _FORMULAS:
        _FORMULAS[_op] = _wrap(_FORMULAS[_op])
ATTENTION_OPS = frozenset(op for op in _FORMULAS if "attention" in str(op))


class FlopCounter(TorchDispatchMode):
    """Counts the FLOPs of the matmuls and attention run inside it, forward and backward.

    torch's formulas (``torch.utils.flop_counter``) plus the CPU attention
    kernels. Unlike ``FlopCounterMode``, it never replaces an op by its
    decomposition (that mode runs, e.g., ``silu_backward`` decomposed, which
    changes gradients in the last bits), so a step counted is bit for bit the
    step not counted, and the first real step of a shape can be the measured one.

    Use as ``with FlopCounter() as counter: model(x).loss.backward()``, then
    read ``counter.total`` and ``counter.attention``.
    """

    def __init__(self):
        super().__init__()
        self.by_op: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = _FORMULAS.get(func._overloadpacket)
        if formula is not None:
            self.by_op[func._overloadpacket] += formula(*args, **kwargs, out_val=out)
        return out

    @property
    def total(self) -> int:
        """FLOPs counted so far."""
        return sum(self.by_op.values())

    @property
    def attention(self) -> int:
        """The part of :attr:`total` spent in attention kernels."""
        return sum(n for op, n in self.by_op.items() if op in ATTENTION_OPS)


def matmul_weights(module: nn.Module) -> int:
    """Number of frozen weights used in matmuls: linear layers and GPT-2's Conv1D, not LoRA.

    Embedding lookups are not matmuls; an LM head tied to the embedding is one.
    """
    total = 0
    for name, sub in module.named_modules():
        if "lora_" in name:
            continue
        if isinstance(sub, nn.Linear) or type(sub).__name__ == "Conv1D":
            total += sub.weight.numel()
    return total


def analytic_lora_step_flops(
    *,
    batch_size: int,
    seq_len: int,
    client_weights: int,
    server_weights: int,
    client_lora_weights: int,
    server_lora_weights: int,
    client_layers: int,
    server_layers: int,
    attention_dim: int,
    first_block_frozen_input_weights: int = 0,
    head_weights: int = 0,
    head_tokens: int | None = None,
) -> StepFlops:
    """Analytic FLOPs of one split LoRA step (PaLM appendix B, adapted to LoRA).

    With ``n = batch_size * seq_len`` tokens and attention cost per layer
    ``a = 4 * batch_size * seq_len**2 * attention_dim`` (QK^T and PV):

    - client forward:   ``2 n N_c + 2 n R_c + L_c a``
    - server fwd + bwd: ``4 n N_s + 6 n R_s + 3.5 L_s a``
    - client backward:  ``2 n N_c + 4 n R_c + 2.5 L_c a - 2 n F``

    ``N`` are frozen matmul weights (blocks; the server's include the LM head
    unless it is given apart as ``head_weights``: then it adds ``4 n_h H`` with
    ``n_h = head_tokens`` the positions where the head runs, those that carry a
    loss, :meth:`llm_split.split.ServerPart.label_loss`; default ``n``),
    ``R`` one client's LoRA weights (forward 2 per token; backward 2 for the
    weight gradient and 2 for the input gradient), ``L`` layers. The backward
    of attention is 2.5 forwards: FlashAttention recomputes the scores. ``F``:
    weights of the first client block whose input is the (frozen) embedding
    output; they get no input gradient (:func:`first_block_frozen_input_weights`).
    """
    n = batch_size * seq_len
    n_head = n if head_tokens is None else head_tokens
    a = 4 * batch_size * seq_len**2 * attention_dim
    return StepFlops(
        client_forward=2 * n * client_weights + 2 * n * client_lora_weights + client_layers * a,
        server_forward_backward=4 * n * server_weights + 4 * n_head * head_weights + 6 * n * server_lora_weights
        + server_layers * a * 7 // 2,
        client_backward=2 * n * client_weights + 4 * n * client_lora_weights + client_layers * a * 5 // 2
        - 2 * n * first_block_frozen_input_weights,
    )


# Modules of block 0 that read only the block's input (the frozen embeddings), by family.
_FIRST_BLOCK_INPUT_MODULES = {
    "llama": ("q_proj", "k_proj", "v_proj"),
    "mistral": ("q_proj", "k_proj", "v_proj"),
    "qwen2": ("q_proj", "k_proj", "v_proj"),
    "qwen3": ("q_proj", "k_proj", "v_proj"),
    "gpt2": ("c_attn",),
    "gpt_neox": ("query_key_value",),
}


def first_block_frozen_input_weights(client: nn.Module) -> int:
    """Weights of block 0 that read the embeddings only, so need no input gradient.

    The frozen base weights and the LoRA ``A`` matrices of one adapter of those
    modules count (a GPT-NeoX parallel-residual MLP reads the block input too,
    and gets no gradient at all; it is counted here as well, as 2 n per weight).
    """
    block = client.blocks[0]
    names = _FIRST_BLOCK_INPUT_MODULES.get(client.config.model_type, ())
    if client.config.model_type == "gpt_neox" and client.config.use_parallel_residual:
        names += ("dense_h_to_4h", "dense_4h_to_h")
    total = 0
    for name, sub in block.named_modules():
        if name.rsplit(".", 1)[-1] in names:
            base = getattr(sub, "base_layer", sub)
            total += base.weight.numel()
            lora_a = getattr(sub, "lora_A", None)
            if lora_a:
                total += next(iter(lora_a.values())).weight.numel()
    return total
