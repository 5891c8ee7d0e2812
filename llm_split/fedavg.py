"""Federated averaging of adapter weights (McMahan et al., 2017, "FedAvg").

    w = sum_k n_k w_k / sum_k n_k

with ``n_k`` the number of samples client k trained on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch


def normalise_weights(weights: Sequence[float]) -> list[float]:
    """Weights scaled to sum to 1; each must be >= 0 and their sum > 0."""
    weights = [float(w) for w in weights]
    if not weights:
        raise ValueError("fedavg needs at least one client")
    if any(not w >= 0 for w in weights) or not sum(weights) > 0:
        raise ValueError(f"fedavg weights(={weights}) must be >= 0 with a positive sum")
    total = sum(weights)
    return [w / total for w in weights]


@torch.no_grad()
def fedavg_state_dicts(
    state_dicts: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float]
) -> dict[str, torch.Tensor]:
    """Weighted average of state dicts with the same keys and shapes.

    Parameters
    ----------
    state_dicts : sequence of mappings name -> Tensor
        One per client, same keys and shapes.
    weights : sequence of float
        One per state dict (e.g. sample counts), normalised here.

    Returns
    -------
    dict name -> Tensor
        New tensors, in the dtype of the first state dict; accumulated in float64
        so that the order of the clients changes nothing but rounding in the last
        cast.
    """
    if len(state_dicts) != len(weights):
        raise ValueError(f"fedavg got {len(state_dicts)} state dicts but {len(weights)} weights")
    weights = normalise_weights(weights)
    keys = list(state_dicts[0])
    for k, sd in enumerate(state_dicts):
        if sorted(sd) != sorted(keys):
            raise ValueError(f"state dict {k} has keys {sorted(sd)}, expected {sorted(keys)}")
    averaged = {}
    for key in keys:
        acc = sum(w * sd[key].to(torch.float64) for w, sd in zip(weights, state_dicts))
        averaged[key] = acc.to(state_dicts[0][key].dtype)
    return averaged


@torch.no_grad()
def mix_state_dicts(global_state: Mapping[str, torch.Tensor], client_state: Mapping[str, torch.Tensor],
                    weight: float) -> dict[str, torch.Tensor]:
    """FedAsync's server update (Xie et al., 2019): ``(1 - w) x_global + w x_client``, ``0 <= w <= 1``.

    Accumulated in float64 and cast back to the global state's dtype.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"mixing weight(={weight!r}) must be in [0, 1]")
    if sorted(global_state) != sorted(client_state):
        raise ValueError(f"client state keys {sorted(client_state)} do not match {sorted(global_state)}")
    return {key: ((1.0 - weight) * g.to(torch.float64) + weight * client_state[key].to(torch.float64)).to(g.dtype)
            for key, g in global_state.items()}


@torch.no_grad()
def apply_deltas(global_state: Mapping[str, torch.Tensor], deltas: Sequence[Mapping[str, torch.Tensor]],
                 weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """FedBuff's server update (Nguyen et al., 2022): ``x_global + sum_i w_i delta_i``.

    ``weights`` are used as given (the caller folds in the server learning rate, the
    staleness weights and the 1 / M of the buffer); accumulated in float64.
    """
    if len(deltas) != len(weights):
        raise ValueError(f"apply_deltas got {len(deltas)} deltas but {len(weights)} weights")
    out = {}
    for key, g in global_state.items():
        acc = g.to(torch.float64) + sum(w * d[key].to(torch.float64) for w, d in zip(weights, deltas))
        out[key] = acc.to(g.dtype)
    return out


@torch.no_grad()
def state_delta(new: Mapping[str, torch.Tensor], base: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``new - base`` per tensor, in float64 (an update relative to the adapter it started from)."""
    return {key: t.to(torch.float64) - base[key].to(torch.float64) for key, t in new.items()}
