"""The server's side of sparsified uploads: merge rules and averaging the product (SOFT, arXiv 2505.00333).

- :func:`merge`: the weighted average of what the clients sent; a value a client
  did not send counts as unchanged (the last broadcast), or the value is
  averaged over the clients that sent it.
- :func:`complete`: a client's upload with what it did not send filled in from
  the last broadcast (what the server reconstructs).
- :func:`average_product`: average the products ``B_k A_k`` and re-factor them
  to rank r by a truncated SVD, never forming a ``d_out x d_in`` matrix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from .fedavg import normalise_weights
from .ortho import check_factors, lora_pairs
from .sparsify import Selection, check_same_layout

RULES = ("unchanged", "senders")


@torch.no_grad()
def complete(global_state: Mapping[str, torch.Tensor], client_state: Mapping[str, torch.Tensor],
             selection: Selection) -> dict[str, torch.Tensor]:
    """The values ``selection`` marks from ``client_state``, the others from ``global_state``."""
    check_same_layout(client_state, global_state, "client state", "the global state")
    return {key: torch.where(selection.masks[key], t, global_state[key]) for key, t in client_state.items()}


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
        check_same_layout(sd, global_state, f"client state {k}", "the global state")
        check_same_layout(mask, global_state, f"selection {k}", "the global state")
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
