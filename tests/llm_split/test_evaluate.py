"""Label-token evaluation: a hand-made case, and the trainer against the unsplit model."""

import math

import pytest
import torch
import torch.nn.functional as F

from llm_split.evaluate import EvalResult, evaluate_label_token
from llm_split.lora import LoraSettings
from llm_split.models import tiny_causal_lm
from llm_split.trainer import SplitLoRATrainer


def labelled(label_tokens, seq_len=3):
    labels = torch.full((len(label_tokens), seq_len), -100)
    labels[:, -1] = torch.tensor(label_tokens)
    return labels


def test_hand_made_case():
    # Vocabulary of 4, classes are tokens 1 and 3. Logits at T-2 for three examples:
    logits = torch.tensor([
        [5.0, 1.0, 0.0, 2.0],  # argmax 0 overall, but among {1, 3}: 3 -> label 3, correct
        [0.0, 2.0, 0.0, 1.0],  # among {1, 3}: 1 -> label 3, wrong
        [0.0, 0.0, 0.0, 0.0],  # tie: the first class, 1 -> label 1, correct
    ])
    batches = [{"labels": labelled([3])}, {"labels": labelled([3, 1])}]  # uneven batches
    rows = iter([logits[:1], logits[1:]])
    result = evaluate_label_token(lambda b: next(rows), batches, [1, 3])

    def ce(row, label):
        return math.log(sum(math.exp(v) for v in row)) - row[label]

    expected_loss = (ce([5, 1, 0, 2], 3) + ce([0, 2, 0, 1], 3) + ce([0, 0, 0, 0], 1)) / 3
    assert isinstance(result, EvalResult)
    assert result.n == 3
    assert result.accuracy == pytest.approx(2 / 3)
    assert result.loss == pytest.approx(expected_loss, rel=1e-6)


def test_missing_label_is_refused():
    labels = torch.full((1, 3), -100)
    with pytest.raises(ValueError, match="label"):
        evaluate_label_token(lambda b: torch.zeros(1, 4), [{"labels": labels}], [1])


def test_trainer_evaluate_matches_the_unsplit_model():
    vocab, classes = 64, [7, 9, 11]
    model = tiny_causal_lm("llama", vocab_size=vocab, n_layers=4)
    tr = SplitLoRATrainer(model, cut_layer=2, lora=LoraSettings(rank=2), n_clients=2, lr=1e-3)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (6, 8), generator=g)
    ids[:, -1] = torch.tensor(classes * 2)  # the label token ends each sequence
    mask = torch.ones_like(ids)
    mask[0, :3] = 0
    labels = labelled(ids[:, -1].tolist(), seq_len=8)
    batches = [{"input_ids": ids[i:i + 3], "attention_mask": mask[i:i + 3], "labels": labels[i:i + 3]}
               for i in (0, 3)]
    for k in range(2):  # distinct, non-zero adapters: evaluate must use client 0's
        g_k = torch.Generator().manual_seed(10 + k)
        tr.set_client_adapter_state(k, {n: torch.randn(t.shape, generator=g_k)
                                        for n, t in tr.client_adapter_state(k).items()})
        tr.set_server_adapter_state(k, {n: torch.randn(t.shape, generator=g_k)
                                        for n, t in tr.server_adapter_state(k).items()})
    tr.use(1)
    result = tr.evaluate(batches, classes)
    assert tr.model.training  # train mode restored

    tr.use(0)
    model.eval()
    with torch.no_grad():
        out = model(ids, attention_mask=mask, labels=labels)  # one labelled token per row
    predicted = torch.tensor(classes)[out.logits[:, -2, classes].argmax(-1)]
    assert result.n == 6
    assert result.accuracy * 6 == pytest.approx((predicted == ids[:, -1]).sum().item())
    assert result.loss == pytest.approx(out.loss.item(), abs=1e-5)
    assert result.loss == pytest.approx(F.cross_entropy(out.logits[:, -2], ids[:, -1]).item(), abs=1e-5)
