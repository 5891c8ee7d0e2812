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
