"""Accuracy and loss on label-token classification.

A classification example is a prompt followed by one label token; with the
Hugging Face labels convention its ``labels`` row is -100 everywhere except the
last position, which holds the label token. The logits at position T-2 predict
that token:

- loss: cross-entropy over the whole vocabulary at T-2 against the label (the
  same value as the model's shifted causal-LM loss on such labels), averaged
  over examples;
- accuracy: the argmax of the logits at T-2 *restricted to the label tokens*
  equals the label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class EvalResult:
    """Metrics over an evaluation set.

    Attributes
    ----------
    accuracy : float
        Fraction of examples whose restricted argmax is the label, in [0, 1].
    loss : float
        Mean cross-entropy (nats) of the label token.
    n : int
        Number of examples.
    """

    accuracy: float
    loss: float
    n: int


@torch.no_grad()
def evaluate_label_token(
    predict: Callable[[Mapping[str, torch.Tensor]], torch.Tensor],
    batches: Iterable[Mapping[str, torch.Tensor]],
    label_token_ids: Sequence[int],
) -> EvalResult:
    """Evaluate a model on label-token examples, batch by batch.

    Parameters
    ----------
    predict : callable batch -> Tensor (B, V)
        Logits at position T-2 (the position that predicts the last token).
    batches : iterable of dicts
        Each with ``labels`` (B, T) (and whatever ``predict`` reads).
    label_token_ids : sequence of int
        Token ids of the classes.
    """
    label_ids = torch.as_tensor(list(label_token_ids), dtype=torch.long)
    if label_ids.numel() == 0:
        raise ValueError("label_token_ids must not be empty")
    loss_sum, correct, n = 0.0, 0, 0
    for batch in batches:
        labels = batch["labels"][:, -1]  # (B,)
        if (labels == -100).any():
            raise ValueError("every example needs its label token at the last position of labels (found -100)")
        logits = predict(batch).float()  # (B, V)
        loss_sum += F.cross_entropy(logits, labels.to(logits.device), reduction="sum").item()
        choice = logits[:, label_ids.to(logits.device)].argmax(dim=-1)  # (B,) index into label_ids
        correct += (label_ids[choice.cpu()] == labels.cpu()).sum().item()
        n += labels.shape[0]
    if n == 0:
        raise ValueError("evaluate got no examples")
    return EvalResult(accuracy=correct / n, loss=loss_sum / n, n=n)
