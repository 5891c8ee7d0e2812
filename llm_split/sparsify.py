"""Sparsified adapter uploads with exact byte accounting, and the server's merge rules (SOFT, arXiv 2505.00333).

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

Server side: :func:`merge` (what a client did not send counts as unchanged,
or is averaged over the senders only) and :func:`average_product` (average
the products ``B_k A_k`` and re-factor them to rank r by a truncated SVD).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from .fedavg import normalise_weights
from .ortho import check_factors, lora_pairs
from .payload import tensor_nbytes

RULES = ("unchanged", "senders")


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
    _check_same(reference, state, "reference", "state")

    def largest(key, t, keep):
        change = (t.detach().to(torch.float64) - reference[key].detach().to(torch.float64)).abs().reshape(-1)
        change = torch.nan_to_num(change, nan=math.inf)  # a diverged entry counts as the largest change
        # The keep-th largest change, then everything above it and the first ties by index: O(numel), no sort.
        kth = torch.topk(change, keep, sorted=False).values.min()
        above = (change > kth).nonzero().flatten()
        tied = (change == kth).nonzero().flatten()[: keep - above.numel()]
        return torch.cat([above, tied])

    return _entry_selection(state, sparsity, largest)


def randomk_select(state: Mapping[str, torch.Tensor], sparsity: float, generator: torch.Generator) -> Selection:
    """Per tensor, send ``ceil((1 - sparsity) numel - 1e-9)`` entries drawn uniformly without replacement.

    Tensors are drawn in the state's key order from ``generator`` (a CPU
    ``torch.Generator``), so the same seed gives the same masks. Index bytes per
    tensor: 0 when all are sent, else ``ceil(min(numel, n_keep ceil(log2 numel)) / 8)``
    (a bitmask of numel bits, or the list of indices, whichever is smaller).
    """
    return _entry_selection(state, sparsity, lambda key, t, keep: torch.randperm(t.numel(), generator=generator)[:keep])


def dense_selection(state: Mapping[str, torch.Tensor]) -> Selection:
    """Everything sent, no index: ``nbytes == state_dict_nbytes(state)``."""
    masks = {key: torch.ones(t.shape, dtype=torch.bool, device=t.device) for key, t in state.items()}
    value_bytes = sum(tensor_nbytes(t) for t in state.values())
    total = sum(t.numel() for t in state.values())
    return Selection(masks, value_bytes, value_bytes, 0, total, total)


def _check_same(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], name_a: str, name_b: str) -> None:
    """ValueError unless ``a`` and ``b`` have the same keys and shapes."""
    if set(a) != set(b):
        missing, extra = sorted(set(b) - set(a)), sorted(set(a) - set(b))
        raise ValueError(f"{name_a} has keys different from {name_b}: missing {missing}, unexpected {extra}")
    for key in b:
        if tuple(a[key].shape) != tuple(b[key].shape):
            raise ValueError(
                f"{name_a}[{key!r}] has shape {tuple(a[key].shape)}, {name_b} has {tuple(b[key].shape)}"
            )


@torch.no_grad()
def merge(
    global_state: Mapping[str, torch.Tensor],
    client_states: Sequence[Mapping[str, torch.Tensor]],
    selections: Sequence[Selection | Mapping[str, torch.Tensor]],
    weights: Sequence[float],
    *,
    rule: str = "unchanged",
) -> dict[str, torch.Tensor]:
    """The server's weighted average of sparsified uploads.

    Parameters
    ----------
    global_state : mapping name -> Tensor
        The values the server broadcast last.
    client_states : sequence of mappings name -> Tensor
        One per client, same keys and shapes as ``global_state``; only the
        entries its selection marks are read.
    selections : sequence of Selection (or of mappings name -> BoolTensor)
        One per client; True = the entry was sent.
    weights : sequence of float
        One per client (e.g. sample counts), normalised here.
    rule : {"unchanged", "senders"}
        ``"unchanged"`` (default): an entry a client did not send is taken as
        unchanged, equal to the global value:
        ``new = sum_k w_k where(mask_k, x_k, global)``. It is accumulated in
        float64 in the same order and form as
        :func:`llm_split.fedavg.fedavg_state_dicts`, so with every mask True the
        result equals FedAvg bit for bit. Unsent entries pull the average
        towards the last broadcast, a damping that grows with the sparsity.
        ``"senders"``: each entry is the weighted average over the clients that
        sent it, ``sum_k w_k m_k x_k / sum_k w_k m_k``; an entry every client
        sent is FedAvg's (bit for bit), one nobody sent keeps the global value.

    Returns
    -------
    dict name -> Tensor
        New tensors in the key order and dtypes of the first client state.
    """
    if rule not in RULES:
        raise ValueError(f"merge rule(={rule!r}) must be one of {list(RULES)}")
    if not len(client_states) == len(selections) == len(weights):
        raise ValueError(
            f"merge got {len(client_states)} client states, {len(selections)} selections and {len(weights)} weights"
        )
    weights = normalise_weights(weights)
    masks = [sel.masks if isinstance(sel, Selection) else sel for sel in selections]
    for k, (sd, mask) in enumerate(zip(client_states, masks)):
        _check_same(sd, global_state, f"client state {k}", "the global state")
        _check_same(mask, global_state, f"selection {k}", "the global state")
        for key, m in mask.items():
            if m.dtype != torch.bool:
                raise ValueError(f"selection {k}[{key!r}] must be a bool mask (got {m.dtype})")
    merged = {}
    for key in client_states[0]:
        g = global_state[key]
        dtype = client_states[0][key].dtype
        if rule == "unchanged":
            acc = sum(w * torch.where(m[key], sd[key], g).to(torch.float64)
                      for w, sd, m in zip(weights, client_states, masks))
        else:
            acc = sum(w * torch.where(m[key], sd[key], 0).to(torch.float64)
                      for w, sd, m in zip(weights, client_states, masks))
            sent = sum(w * m[key].to(torch.float64) for w, m in zip(weights, masks))
            everyone = torch.stack([m[key] for m in masks]).all(dim=0)
            partial = torch.where(sent > 0, acc / torch.where(sent > 0, sent, 1.0), g.to(torch.float64))
            acc = torch.where(everyone, acc, partial)
        merged[key] = acc.to(dtype)
    return merged


@torch.no_grad()
def average_product(
    client_states: Sequence[Mapping[str, torch.Tensor]],
    weights: Sequence[float],
    *,
    rank: int,
    scale: float | Sequence[float] | None = None,
) -> dict[str, torch.Tensor]:
    """Average the products ``B_k A_k`` and re-factor to rank ``rank``; see :func:`average_product_with_errors`."""
    return average_product_with_errors(client_states, weights, rank=rank, scale=scale)[0]


@torch.no_grad()
def average_product_with_errors(
    client_states: Sequence[Mapping[str, torch.Tensor]],
    weights: Sequence[float],
    *,
    rank: int,
    scale: float | Sequence[float] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """"Average the product": per module ``M = sum_k w_k s_k B_k A_k``, re-factored to rank r.

    Averaging A and B separately (FedAvg) gives ``mean(B) mean(A)``, which is
    not the mean of the updates ``B_k A_k``; this aggregation averages the
    updates themselves and keeps the best rank-r approximation (Eckart-Young):
    ``B = U_r sqrt(S_r)``, ``A = sqrt(S_r) V_r^T`` from the SVD ``M = U S V^T``.
    The SVD runs on the server: ``M = P Q`` with ``P = [w_1 s_1 B_1, ...]``
    (d_out, R) and ``Q = [A_1; ...]`` (R, d_in), ``R = sum_k r_k``, so it is taken
    of the R x R core of the QR factors of P and Q^T, exactly and in
    ``O((d_in + d_out) R^2)``, never of a d_out x d_in matrix.

    Parameters
    ----------
    client_states : sequence of mappings name -> Tensor
        LoRA adapter states with the same keys; ranks may differ between
        clients, ``d_in`` and ``d_out`` may not.
    weights : sequence of float
        One per client, normalised here.
    rank : int >= 1
        Rank of the result; components beyond the averaged product's rank are zero.
    scale : float, sequence of float, or None
        Client k's update is ``s_k B_k A_k`` in units of the result's LoRA
        scale: pass ``s_k = (alpha_k / r_k) / (alpha / rank)`` (one value for
        all, or one per client), and ``(alpha / rank) B A`` approximates the
        clients' average update. None: 1 for every client (all share the
        result's scale, which then cancels).

    Returns
    -------
    state : dict name -> Tensor
        Keys of the first client state; A (rank, d_in), B (d_out, rank) in its dtypes.
    errors : dict prefix -> float
        Relative Frobenius truncation error ``||M - B A||_F / ||M||_F =
        sqrt(sum_{i>r} s_i^2 / sum_i s_i^2)`` per module (module prefix as in
        :func:`llm_split.ortho.lora_pairs`). Singular values below
        ``max(d_out, d_in) * eps64 * s_max`` count as 0, so the error is exactly 0
        when M has rank <= r (and for M = 0).
    """
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"rank(={rank!r}) must be an integer >= 1")
    if len(client_states) != len(weights):
        raise ValueError(f"average_product got {len(client_states)} client states but {len(weights)} weights")
    weights = normalise_weights(weights)
    scales = [1.0] * len(weights) if scale is None else (
        [float(scale)] * len(weights) if isinstance(scale, (int, float)) else [float(s) for s in scale])
    if len(scales) != len(weights):
        raise ValueError(f"average_product got {len(scales)} scales for {len(weights)} clients")
    pairs = lora_pairs(client_states[0])
    for k, sd in enumerate(client_states[1:], start=1):
        if set(sd) != set(client_states[0]):
            raise ValueError(f"client state {k} has keys {sorted(sd)}, expected {sorted(client_states[0])}")
    out, errors = {}, {}
    for prefix, (key_a, key_b) in pairs.items():
        factors = [(sd[key_a], sd[key_b]) for sd in client_states]
        (A0, B0) = factors[0]
        for k, (A, B) in enumerate(factors):
            check_factors(A, B, f"client state {k}: {prefix}")
            if A.shape[1] != A0.shape[1] or B.shape[0] != B0.shape[0]:
                raise ValueError(f"client state {k}: {prefix}: lora_B{tuple(B.shape)} @ lora_A{tuple(A.shape)} "
                                 f"does not match client 0's {tuple(B0.shape)} @ {tuple(A0.shape)}")
        P = torch.cat([w * s * B.to(torch.float64) for w, s, (_, B) in zip(weights, scales, factors)], dim=1)
        Q = torch.cat([A.to(torch.float64) for A, _ in factors], dim=0)
        B_new, A_new, errors[prefix] = _truncated_factors(P, Q, rank)
        out[key_a], out[key_b] = A_new.to(A0.dtype), B_new.to(B0.dtype)
    return {key: out[key] for key in client_states[0]}, errors


def _truncated_factors(P: torch.Tensor, Q: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Rank-``rank`` factors ``B (d_out, rank)``, ``A (rank, d_in)`` of ``M = P Q`` and the relative error."""
    d_out, d_in = P.shape[0], Q.shape[1]
    qp, rp = torch.linalg.qr(P)  # P = qp rp, qp (d_out, m) with orthonormal columns
    qq, rq = torch.linalg.qr(Q.T)  # Q = rq^T qq^T
    u, s, vh = torch.linalg.svd(rp @ rq.T)  # M = (qp u) diag(s) (vh qq^T)
    tol = max(d_out, d_in) * torch.finfo(torch.float64).eps * (float(s[0]) if s.numel() else 0.0)
    s = torch.where(s > tol, s, torch.zeros_like(s))
    n = min(rank, s.numel())
    root = s[:n].sqrt()
    B = torch.zeros(d_out, rank, dtype=torch.float64, device=P.device)
    A = torch.zeros(rank, d_in, dtype=torch.float64, device=P.device)
    B[:, :n] = (qp @ u[:, :n]) * root
    A[:n, :] = root[:, None] * (vh[:n, :] @ qq.T)
    energy = float(s.square().sum())
    error = math.sqrt(float(s[n:].square().sum()) / energy) if energy > 0 else 0.0
    return B, A, error
