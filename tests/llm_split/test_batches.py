import numpy as np
import pytest
import torch

from _tokenizer import smollm2_tokenizer
from cosim.errors import CosimError
from llm_split.batches import ClientBatches, eval_batches
from llm_split.encoding import PromptEncoder
from llm_split.tasks import load_task

INDICES = np.array([5, 17, 2, 40, 33, 8, 21, 11, 9, 30])


def draw(sampler, n_batches):
    return np.concatenate([sampler.next_indices() for _ in range(n_batches)])


def test_every_index_once_per_epoch_then_reshuffled():
    sampler = ClientBatches(INDICES, 5, np.random.default_rng(0))
    stream = draw(sampler, 8)  # 4 epochs of 10
    epochs = stream.reshape(4, 10)
    for epoch in epochs:
        assert sorted(epoch) == sorted(INDICES)  # no repeats, none missing
    assert len({tuple(e) for e in epochs}) == 4  # a new order each epoch
    assert sampler.epoch == 4


def test_batches_that_straddle_an_epoch_wrap_around():
    sampler = ClientBatches(INDICES, 4, np.random.default_rng(1))
    batches = [sampler.next_indices() for _ in range(5)]  # 20 draws = 2 epochs
    assert all(b.shape == (4,) and b.dtype == np.int64 for b in batches)
    stream = np.concatenate(batches)
    assert sorted(stream[:10]) == sorted(INDICES) and sorted(stream[10:]) == sorted(INDICES)
    assert sampler.epoch == 2


def test_fewer_examples_than_batch_size():
    sampler = ClientBatches([3, 7, 9], 8, np.random.default_rng(2))
    batch = sampler.next_indices()
    assert batch.shape == (8,)
    assert sorted(batch[:3]) == [3, 7, 9] and sorted(batch[3:6]) == [3, 7, 9]
    assert sampler.epoch == 2


def test_deterministic_for_a_given_generator():
    a = draw(ClientBatches(INDICES, 3, np.random.default_rng(7)), 9)
    b = draw(ClientBatches(INDICES, 3, np.random.default_rng(7)), 9)
    c = draw(ClientBatches(INDICES, 3, np.random.default_rng(8)), 9)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_bad_arguments():
    with pytest.raises(CosimError, match=r"batch_size\(=0\)"):
        ClientBatches(INDICES, 0, np.random.default_rng(0))
    with pytest.raises(CosimError, match="indices"):
        ClientBatches([], 2, np.random.default_rng(0))


def test_eval_batches_cover_the_held_out_set_in_order():
    task = load_task("rotten_tomatoes", test_size=10)
    encoder = PromptEncoder(smollm2_tokenizer(), task, seq_len=48)
    batches = eval_batches(encoder, task.test_texts, task.test_labels, batch_size=4)
    assert [b["input_ids"].shape for b in batches] == [(4, 48), (4, 48), (2, 48)]
    classes = torch.cat([encoder.class_labels(b["input_ids"]) for b in batches])
    assert classes.tolist() == task.test_labels.tolist()
    whole = encoder.encode(task.test_texts, task.test_labels)
    assert torch.equal(torch.cat([b["input_ids"] for b in batches]), whole["input_ids"])
    with pytest.raises(CosimError, match=r"batch_size\(=0\)"):
        eval_batches(encoder, task.test_texts, task.test_labels, batch_size=0)
