"""Near-orthogonality regulariser on LoRA factors (SOFT, arXiv 2505.00333), and how factors pair up.

SOFT keeps the rank components of a LoRA update ``(alpha / r) B A`` close to
independent directions by penalising

    R(A, B) = ||A A^T - I_r||_F^2 + ||B^T B - I_r||_F^2

with ``A`` (r, d_in) and ``B`` (d_out, r). With orthonormal rows of ``A`` and
orthonormal columns of ``B`` the update's singular values are the products
``||B[:, j]|| ||A[j, :]||``, which is why :func:`llm_split.sparsify.component_importance`
can rank components without an SVD.

The gradient has a closed form (``A A^T - I`` and ``B^T B - I`` are symmetric):

    dR/dA = 4 (A A^T - I_r) A,        dR/dB = 4 B (B^T B - I_r)

so the trainer adds ``weight * dR`` to the factors' ``.grad`` after the task
loss's backward and before the optimizer step (:func:`add_ortho_grads`),
without a second autograd graph.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

LORA_A = ".lora_A."
LORA_B = ".lora_B."


def lora_pairs(keys: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Pair the ``lora_A`` and ``lora_B`` keys of an adapter state by their common prefix.

    Parameters
    ----------
    keys : iterable of str
        Keys like ``"blocks.0.self_attn.q_proj.lora_A.weight"``; the key of B is
        that of A with ``.lora_A.`` replaced by ``.lora_B.`` (any adapter name
        or ``weight`` suffix after it must agree).

    Returns
    -------
    dict prefix -> (key of A, key of B)
        One entry per LoRA module, ``prefix`` the part before ``.lora_A.``, in
        the order the A keys (or, for a B seen first, the B keys) come.

    Raises
    ------
    ValueError
        A key with neither ``.lora_A.`` nor ``.lora_B.`` in it, a factor whose
        partner is missing, or two adapters of one module (e.g. keys still
        holding different adapter names); the message names the key.
    """
    keys = list(keys)
    present = set(keys)
    pairs: dict[str, tuple[str, str]] = {}
    for key in keys:
        if LORA_A in key:
            partner = key.replace(LORA_A, LORA_B, 1)
            key_a, key_b = key, partner
        elif LORA_B in key:
            partner = key.replace(LORA_B, LORA_A, 1)
            key_a, key_b = partner, key
        else:
            raise ValueError(f"key {key!r} is not a LoRA factor (no '.lora_A.' or '.lora_B.' in it)")
        if partner not in present:
            raise ValueError(f"LoRA factor {key!r} has no partner {partner!r}")
        prefix = key_a.split(LORA_A, 1)[0]
        if pairs.get(prefix, (key_a, key_b)) != (key_a, key_b):
            raise ValueError(f"keys {pairs[prefix][0]!r} and {key_a!r} are two LoRA factors of module {prefix!r}")
        pairs[prefix] = (key_a, key_b)
    return pairs


def check_factors(A: torch.Tensor, B: torch.Tensor, name: str = "LoRA module") -> int:
    """The rank ``r`` of a factor pair; ValueError unless A is (r, d_in) and B (d_out, r)."""
    if A.dim() != 2 or B.dim() != 2 or A.shape[0] != B.shape[1]:
        raise ValueError(
            f"{name}: lora_A{tuple(A.shape)} and lora_B{tuple(B.shape)} must be (r, d_in) and (d_out, r)"
        )
    return A.shape[0]


def _work(t: torch.Tensor) -> torch.Tensor:
    # Half precisions lose the identity's structure in r x r products: work in float32.
    return t.detach().float() if t.dtype in (torch.float16, torch.bfloat16) else t.detach()


@torch.no_grad()
def _penalty_and_grads(A: torch.Tensor, B: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r = check_factors(A, B)
    a, b = _work(A), _work(B)
    eye = torch.eye(r, dtype=a.dtype, device=a.device)
    ga = a @ a.T - eye  # (r, r), symmetric
    gb = b.T @ b - eye
    penalty = ga.square().sum() + gb.square().sum()
    return penalty, (4 * ga @ a).to(A.dtype), (4 * b @ gb).to(B.dtype)


def ortho_penalty(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """``||A A^T - I_r||_F^2 + ||B^T B - I_r||_F^2`` (a 0-d tensor, differentiable).

    Parameters
    ----------
    A : Tensor (r, d_in)
        ``lora_A.weight``.
    B : Tensor (d_out, r)
        ``lora_B.weight``.
    """
    r = check_factors(A, B)
    eye = torch.eye(r, dtype=A.dtype, device=A.device)
    return (A @ A.T - eye).square().sum() + (B.T @ B - eye).square().sum()


def ortho_penalty_grads(A: torch.Tensor, B: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form gradient of :func:`ortho_penalty`: ``(4 (A A^T - I) A, 4 B (B^T B - I))``.

    Computed under ``no_grad``; returned in the dtypes of ``A`` and ``B``
    (float16/bfloat16 factors are worked on in float32).
    """
    _, grad_a, grad_b = _penalty_and_grads(A, B)
    return grad_a, grad_b


@torch.no_grad()
def add_ortho_grads(params: Mapping[str, torch.nn.Parameter], weight: float) -> float:
    """Add ``weight * dR/d(factor)`` to the ``.grad`` of every LoRA factor pair; return the summed penalty.

    Call after the task loss's ``backward()`` and before the optimizer step:
    the step then descends ``loss + weight * sum_modules R(A, B)``.

    Parameters
    ----------
    params : mapping name -> Parameter
        LoRA factors keyed as in :func:`llm_split.lora.adapter_parameters`
        (paired by :func:`lora_pairs`).
    weight : float
        Regularisation weight ``lambda`` >= 0.

    Returns
    -------
    float
        ``sum_modules R(A, B)`` at the current values, not multiplied by
        ``weight`` (the loss term is ``weight`` times it).

    Notes
    -----
    A factor whose ``.grad`` is None gets a zero gradient first, so the
    optimizer steps it (with AdamW, weight decay and moments too) even when the
    task loss did not reach it.
    """
    weight = float(weight)
    if not weight >= 0 or weight == float("inf"):
        raise ValueError(f"orthogonality weight(={weight}) must be a finite number >= 0")
    total = 0.0
    for prefix, (key_a, key_b) in lora_pairs(params).items():
        A, B = params[key_a], params[key_b]
        check_factors(A, B, prefix)
        penalty, grad_a, grad_b = _penalty_and_grads(A, B)
        for param, grad in ((A, grad_a), (B, grad_b)):
            if param.grad is None:
                param.grad = torch.zeros_like(param)
            param.grad.add_(grad, alpha=weight)
        total += float(penalty)
    return total
