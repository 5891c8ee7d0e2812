"""What crosses the cut: the messages of one split step and their sizes in bytes.

Sizes are those of the real tensors (``numel * element_size``), so they follow
the dtype: float32 hidden states cost 4 bytes a value, int64 token ids 8.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch


def tensor_nbytes(tensor: torch.Tensor) -> int:
    """Bytes of a tensor's values: ``numel * element_size``."""
    return tensor.numel() * tensor.element_size()


def state_dict_nbytes(state_dict: Mapping[str, torch.Tensor]) -> int:
    """Bytes of all tensors of a state dict (e.g. one client's LoRA adapter)."""
    return sum(tensor_nbytes(t) for t in state_dict.values())


@dataclass(frozen=True)
class CutMessage:
    """Uplink, client -> main server: the cut activations and what the server needs with them.

    Attributes
    ----------
    hidden : Tensor (B, T, H)
        Output of the client's last block, detached from the client's graph.
    attention_mask : Tensor (B, T)
        Padding mask (1 = token); the server rebuilds its causal mask from it.
    labels : Tensor (B, T)
        Next-token targets, -100 where no loss is taken.
    nbytes : int
        Bytes of the three tensors together.
    """

    hidden: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    nbytes: int


@dataclass(frozen=True)
class ServerReply:
    """Downlink, main server -> client: the gradient at the cut.

    Attributes
    ----------
    loss : float
        Training loss of the step (mean cross-entropy over labelled tokens).
    grad : Tensor (B, T, H)
        Gradient of the loss with respect to ``CutMessage.hidden``.
    nbytes : int
        Bytes of ``grad`` (the loss is a few bytes and not counted).
    """

    loss: float
    grad: torch.Tensor
    nbytes: int
