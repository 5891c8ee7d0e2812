import numpy as np
import pytest
import torch

from _tokenizer import smollm2_tokenizer
from cosim.errors import CosimError
from llm_split.encoding import IGNORE_INDEX, PromptEncoder
from llm_split.tasks import Task, load_task


@pytest.fixture(scope="module")
def tokenizer():
    return smollm2_tokenizer()


def make_task(texts=("A fine film.", "Dull and far too long."), labels=(1, 0),
              label_words=(" negative", " positive"), template="Review: {text}\nSentiment:"):
    return Task(name="toy", template=template, label_words=tuple(label_words),
                train_texts=tuple(texts), train_labels=np.asarray(labels, dtype=np.int64),
                test_texts=(), test_labels=np.zeros(0, dtype=np.int64))


def test_shape_padding_label_position(tokenizer):
    task = make_task()
    encoder = PromptEncoder(tokenizer, task, seq_len=24)
    batch = encoder.encode(task.train_texts, task.train_labels)
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    for tensor in batch.values():
        assert tensor.shape == (2, 24) and tensor.dtype == torch.long
    mask = batch["attention_mask"]
    # Left padding: each row is zeros then ones, and short prompts do get padding.
    assert torch.all(mask[:, 1:] >= mask[:, :-1]) and torch.all(mask[:, -1] == 1)
    assert torch.all(mask[:, 0] == 0)
    assert torch.all(batch["input_ids"][mask == 0] == encoder.pad_token_id)
    expected = encoder.label_token_ids[torch.tensor([1, 0])]
    assert torch.equal(batch["input_ids"][:, -1], expected)
    assert torch.equal(batch["labels"][:, -1], expected)
    assert torch.all(batch["labels"][:, :-1] == IGNORE_INDEX)
    assert torch.equal(encoder.class_labels(batch["input_ids"]), torch.tensor([1, 0]))


def test_round_trip_of_a_short_example(tokenizer):
    task = make_task()
    encoder = PromptEncoder(tokenizer, task, seq_len=32)
    batch = encoder.encode(task.train_texts[:1], task.train_labels[:1])
    kept = batch["input_ids"][0][batch["attention_mask"][0].bool()]
    assert tokenizer.decode(kept) == "Review: A fine film.\nSentiment: positive"


def test_ids_equal_tokenizing_the_whole_prompt(tokenizer):
    # Tokenizing prefix, body and suffix apart must not change a single id.
    task = load_task("rotten_tomatoes")
    encoder = PromptEncoder(tokenizer, task, seq_len=128)  # no snippet is that long
    texts, labels = task.train_texts[:300], task.train_labels[:300]
    batch = encoder.encode(texts, labels)
    assert torch.all(batch["attention_mask"][:, 0] == 0)
    for row, (text, label) in enumerate(zip(texts, labels)):
        joint = tokenizer(task.template.format(text=text) + task.label_words[label],
                          add_special_tokens=False)["input_ids"]
        assert batch["input_ids"][row][batch["attention_mask"][row].bool()].tolist() == joint


def test_truncation_keeps_the_beginning_and_the_suffix(tokenizer):
    task = load_task("imdb")
    encoder = PromptEncoder(tokenizer, task, seq_len=96)
    texts, labels = task.train_texts[:200], task.train_labels[:200]
    batch = encoder.encode(texts, labels)
    full = tokenizer([" " + t for t in texts], add_special_tokens=False)["input_ids"]
    suffix = tokenizer("\nSentiment:", add_special_tokens=False)["input_ids"]
    head = tokenizer("Review:", add_special_tokens=False)["input_ids"]
    n_long = 0
    for row, body in enumerate(full):
        ids = batch["input_ids"][row][batch["attention_mask"][row].bool()].tolist()
        assert ids[:len(head)] == head
        assert ids[-len(suffix) - 1:] == suffix + [int(encoder.label_token_ids[labels[row]])]
        assert ids[len(head):-len(suffix) - 1] == body[:encoder.body_budget]
        n_long += len(body) > encoder.body_budget
    assert n_long > 150  # most reviews are longer than 96 tokens: truncation was exercised


def test_long_tokens_fall_back_to_the_whole_text(tokenizer):
    # 80-character tokens defeat the character pre-cut; the result must not change.
    text = " ".join(["#" * 80] * 200)
    encoder = PromptEncoder(tokenizer, make_task(), seq_len=96)
    batch = encoder.encode([text], [0])
    body = tokenizer(" " + text, add_special_tokens=False)["input_ids"][:encoder.body_budget]
    assert len(body) == encoder.body_budget
    assert batch["input_ids"][0, 2:2 + len(body)].tolist() == body
    assert batch["attention_mask"].sum() == 96


@pytest.mark.parametrize("name", ["imdb", "rotten_tomatoes", "bbc_news"])
def test_label_words_are_distinct_single_tokens(tokenizer, name):
    task = load_task(name, test_size=0, max_train=10)
    encoder = PromptEncoder(tokenizer, task, seq_len=64)
    assert all(encoder.label_word_is_single_token)
    ids = encoder.label_token_ids
    assert ids.dtype == torch.long and ids.shape == (task.n_classes,)
    assert len(set(ids.tolist())) == task.n_classes
    assert [tokenizer.decode([i]) for i in ids.tolist()] == list(task.label_words)


def test_multi_token_label_word_uses_its_first_token(tokenizer):
    encoder = PromptEncoder(tokenizer, make_task(label_words=(" meh", " positive")), seq_len=32)
    assert encoder.label_word_is_single_token == (False, True)
    assert encoder.label_token_ids[0] == tokenizer(" meh", add_special_tokens=False)["input_ids"][0]


def test_label_words_with_the_same_first_token_are_refused(tokenizer):
    with pytest.raises(CosimError, match="distinct"):
        PromptEncoder(tokenizer, make_task(label_words=(" thumbs down", " thumbs up")), seq_len=32)


def test_bos_is_kept_at_the_start_and_eos_left_out():
    from transformers import AutoTokenizer

    from _tokenizer import _cache_dir

    smollm2_tokenizer()  # makes sure the cache exists
    bos_eos = AutoTokenizer.from_pretrained(_cache_dir(), add_bos_token=True, add_eos_token=True)
    plain = smollm2_tokenizer()
    task = make_task()
    with_bos = PromptEncoder(bos_eos, task, seq_len=24).encode(task.train_texts, task.train_labels)
    without = PromptEncoder(plain, task, seq_len=24).encode(task.train_texts, task.train_labels)
    for row in range(2):
        a = with_bos["input_ids"][row][with_bos["attention_mask"][row].bool()].tolist()
        b = without["input_ids"][row][without["attention_mask"][row].bool()].tolist()
        assert a == [bos_eos.bos_token_id] + b


def test_deterministic_and_encode_indices(tokenizer):
    task = load_task("bbc_news", max_train=50)
    encoder = PromptEncoder(tokenizer, task, seq_len=64)
    first = encoder.encode_indices("train", [3, 1, 4])
    again = encoder.encode([task.train_texts[i] for i in (3, 1, 4)], task.train_labels[[3, 1, 4]])
    for key in first:
        assert torch.equal(first[key], again[key])
    assert encoder.encode_indices("test", []).keys() == first.keys()
    assert encoder.encode_indices("test", [])["input_ids"].shape == (0, 64)
    with pytest.raises(CosimError, match="indices"):
        encoder.encode_indices("train", [50])


def test_pad_token_and_left_padding_are_set(tokenizer):
    tokenizer.padding_side = "right"
    PromptEncoder(tokenizer, make_task(), seq_len=16)
    assert tokenizer.padding_side == "left" and tokenizer.pad_token is not None


def test_bad_arguments_are_named(tokenizer):
    with pytest.raises(CosimError, match=r"seq_len\(=6\) must be >= 8"):
        PromptEncoder(tokenizer, make_task(), seq_len=6)
    encoder = PromptEncoder(tokenizer, make_task(), seq_len=16)
    with pytest.raises(CosimError, match=r"labels must be in 0..1 \(got 2\)"):
        encoder.encode(["x"], [2])
    with pytest.raises(CosimError, match="same length"):
        encoder.encode(["x", "y"], [0])
    with pytest.raises(CosimError, match="template"):
        PromptEncoder(tokenizer, make_task(template="Review:"), seq_len=16)
