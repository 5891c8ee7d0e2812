"""Sparsified adapter uploads with exact byte accounting (SOFT, arXiv 2505.00333).

A client uploads part of its LoRA adapter; a :class:`Selection` says which
values (masks, True = sent) and what the upload costs in bytes: the values'
bytes (``numel * element_size`` of what is sent) plus the bytes of the indices
that tell the server where they go.

Sparsifiers:

- :func:`soft_select`: SOFT's rank-component selection, per LoRA module the
  components ``j`` (row ``j`` of A with column ``j`` of B) of highest importance
  ``||B[:, j]|| ||A[j, :]||`` (no SVD; see :mod:`llm_split.ortho`).
- :func:`topk_select`: per tensor the entries that changed most since the
  last broadcast; :func:`randomk_select`: as many entries, at random.
- :func:`dense_selection`: everything, no index.

The server's side (merging what the clients sent) is :mod:`llm_split.aggregate`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from .ortho import check_factors, lora_pairs
from .payload import tensor_nbytes


@dataclass(frozen=True)
class Selection:
    """What one client uploads: which values, and their cost in bytes.

    Attributes
    ----------
    masks : dict name -> BoolTensor
        Same keys and shapes as the state; True = the value is sent.
    nbytes : int
        Bytes of the upload, ``value_bytes + index_bytes``.
    value_bytes : int
        Bytes of the values sent (count x element size of their tensor).
    index_bytes : int
        Bytes of the indices (0 for a tensor or module sent whole).
    kept : int
        Number of values sent.
    total : int
        Number of values in the state.
    components_kept, components_total : int
        Rank components sent / present, summed over the LoRA modules (SOFT);
        0 for the entry sparsifiers.
    """

    masks: dict[str, torch.Tensor]
    nbytes: int
    value_bytes: int
    index_bytes: int
    kept: int
    total: int
    components_kept: int = 0
    components_total: int = 0

    @property
    def sparsity(self) -> float:
        """Fraction of the values not sent, ``1 - kept / total`` (0 for an empty state)."""
        return 1.0 - self.kept / self.total if self.total else 0.0


def n_keep(sparsity: float, n: int) -> int:
    """How many of ``n`` items a sparsity keeps: ``ceil((1 - sparsity) n - 1e-9)``.

    The ``1e-9`` keeps ``(1 - 0.75) * 8`` at 2 despite rounding; a sparsity
    so close to 1 that ``(1 - sparsity) n < 1e-9`` keeps nothing.
    """
    return max(0, math.ceil((1.0 - sparsity) * n - 1e-9))


def index_bits(n: int) -> int:
    """Bits of one index into ``n`` items, ``ceil(log2 n)`` (0 for n <= 1)."""
    return max(0, (n - 1).bit_length())


def _check_sparsity(sparsity: float) -> float:
    sparsity = float(sparsity)
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity(={sparsity}) must be in [0, 1)")
    return sparsity


def component_importance(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Importance of each rank component, ``||B[:, j]||_2 ||A[j, :]||_2`` (no SVD).

    Parameters
    ----------
    A : Tensor (r, d_in)
    B : Tensor (d_out, r)

    Returns
    -------
    Tensor (r,), float64
        Equals the singular values of ``B A`` when A's rows and B's columns are
        orthogonal (what the regulariser of :mod:`llm_split.ortho` pushes to).
    """
    check_factors(A, B)
    a, b = A.detach().to(torch.float64), B.detach().to(torch.float64)
    return torch.linalg.vector_norm(b, dim=0) * torch.linalg.vector_norm(a, dim=1)


def soft_select(state: Mapping[str, torch.Tensor], sparsity: float) -> Selection:
    """SOFT: per LoRA module, send the ``n_keep`` most important rank components.

    Parameters
    ----------
    state : mapping name -> Tensor
        A LoRA adapter state (every key a ``lora_A``/``lora_B`` factor, paired).
    sparsity : float in [0, 1)
        Per module ``n_keep = ceil((1 - sparsity) r - 1e-9)`` components are
        sent, those of highest :func:`component_importance` (ties go to the
        lower index): rows ``j`` of A and columns ``j`` of B.

    Returns
    -------
    Selection
        Value bytes ``n_keep (d_in + d_out)`` values at the factors' element
        sizes. Index bytes per module: 0 when all ``r`` components are sent,
        else ``ceil(n_keep * ceil(log2 r) / 8)``, the kept component numbers
        packed at ``ceil(log2 r)`` bits each (the same indices serve A and B).
        A bitmask of ``r`` bits (``ceil(r / 8)`` bytes) would be the
        alternative; at the ranks of LoRA (r <= 64) either is a few bytes.
    """
    sparsity = _check_sparsity(sparsity)
    masks = {key: torch.zeros(t.shape, dtype=torch.bool, device=t.device) for key, t in state.items()}
    value_bytes = index_bytes = kept = total = comp_kept = comp_total = 0
    for prefix, (key_a, key_b) in lora_pairs(state).items():
        A, B = state[key_a], state[key_b]
        r = check_factors(A, B, prefix)
        keep = n_keep(sparsity, r)
        importance = component_importance(A, B).tolist()
        chosen = sorted(range(r), key=lambda j: (-importance[j], j))[:keep]
        idx = torch.tensor(chosen, dtype=torch.long, device=A.device)
        masks[key_a][idx, :] = True
        masks[key_b][:, idx] = True
        d_in, d_out = A.shape[1], B.shape[0]
        value_bytes += keep * (d_in * A.element_size() + d_out * B.element_size())
        index_bytes += 0 if keep == r else math.ceil(keep * index_bits(r) / 8)
        kept += keep * (d_in + d_out)
        total += r * (d_in + d_out)
        comp_kept += keep
        comp_total += r
    return Selection(masks, value_bytes + index_bytes, value_bytes, index_bytes, kept, total, comp_kept, comp_total)


def _entry_selection(state: Mapping[str, torch.Tensor], sparsity: float, choose) -> Selection:
    """Per tensor, ``n_keep(sparsity, numel)`` entries picked by ``choose(key, tensor, k) -> flat indices``.

    Index bytes per tensor: 0 when all are sent, else
    ``ceil(min(numel, k * ceil(log2 numel)) / 8)``: a bitmask or a list of
    indices, whichever is smaller.
    """
    sparsity = _check_sparsity(sparsity)
    masks = {}
    value_bytes = index_bytes = kept = total = 0
    for key, t in state.items():
        numel = t.numel()
        keep = n_keep(sparsity, numel)
        flat = torch.zeros(numel, dtype=torch.bool, device=t.device)
        if keep == numel:
            flat[:] = True
        elif keep > 0:
            flat[choose(key, t, keep).to(t.device)] = True
            index_bytes += math.ceil(min(numel, keep * index_bits(numel)) / 8)
        masks[key] = flat.reshape(t.shape)
        value_bytes += keep * t.element_size()
        kept += keep
        total += numel
    return Selection(masks, value_bytes + index_bytes, value_bytes, index_bytes, kept, total)


def topk_select(
    state: Mapping[str, torch.Tensor], reference: Mapping[str, torch.Tensor], sparsity: float
) -> Selection:
    """Per tensor, send the entries with the largest change ``|state - reference|``.

    Parameters
    ----------
    state : mapping name -> Tensor
        The client's values after local training.
    reference : mapping name -> Tensor
        The values the server broadcast last (same keys and shapes).
    sparsity : float in [0, 1)
        Per tensor ``ceil((1 - sparsity) numel - 1e-9)`` entries are sent;
        among equal changes the lower flat index goes first.

    Returns
    -------
    Selection
        Index bytes per tensor: 0 when all are sent, else
        ``ceil(min(numel, n_keep ceil(log2 numel)) / 8)`` (a bitmask of numel
        bits, or the list of indices, whichever is smaller).
    """
    check_same_layout(reference, state, "reference", "state")

    def largest(key, t, keep):
        change = (t.detach().to(torch.float64) - reference[key].detach().to(torch.float64)).abs().reshape(-1)
        change = torch.nan_to_num(change, nan=math.inf)  # a diverged entry counts as the largest change
        # The keep-th largest change, then everything above it and the first ties by index: O(numel), no sort.
        kth = torch.topk(change, keep, sorted=False).values.min()
        above = (change > kth).nonzero().flatten()
        tied = (change == kth).nonzero().flatten()[: keep - above.numel()]
        return torch.cat([above, tied])

    return _entry_selection(state, sparsity, largest)


def randomk_select(state: Mapping[str, torch.Tensor], sparsity: float,
                   generator: torch.Generator | int) -> Selection:
    """Per tensor, send ``ceil((1 - sparsity) numel - 1e-9)`` entries drawn uniformly without replacement.

    Tensors are drawn in the state's key order from ``generator`` (a CPU
    ``torch.Generator``, or an int seed of a new one), so the same seed gives the same masks. Index bytes per
    tensor: 0 when all are sent, else ``ceil(min(numel, n_keep ceil(log2 numel)) / 8)``
    (a bitmask of numel bits, or the list of indices, whichever is smaller).
    """
    if isinstance(generator, int):
        generator = torch.Generator().manual_seed(generator)
    return _entry_selection(state, sparsity, lambda key, t, keep: torch.randperm(t.numel(), generator=generator)[:keep])


def dense_selection(state: Mapping[str, torch.Tensor]) -> Selection:
    """Everything sent, no index: ``nbytes == state_dict_nbytes(state)``."""
    masks = {key: torch.ones(t.shape, dtype=torch.bool, device=t.device) for key, t in state.items()}
    value_bytes = sum(tensor_nbytes(t) for t in state.values())
    total = sum(t.numel() for t in state.values())
    return Selection(masks, value_bytes, value_bytes, 0, total, total)


def check_same_layout(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], name_a: str, name_b: str) -> None:
    """ValueError unless ``a`` and ``b`` have the same keys and shapes."""
    if set(a) != set(b):
        missing, extra = sorted(set(b) - set(a)), sorted(set(a) - set(b))
        raise ValueError(f"{name_a} has keys different from {name_b}: missing {missing}, unexpected {extra}")
    for key in b:
        if tuple(a[key].shape) != tuple(b[key].shape):
            raise ValueError(
                f"{name_a}[{key!r}] has shape {tuple(a[key].shape)}, {name_b} has {tuple(b[key].shape)}"
            )
