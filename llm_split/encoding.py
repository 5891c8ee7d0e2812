"""Turn task examples into fixed-shape token batches for a causal LM.

Each example becomes ``[special prefix] + prefix + body + suffix + label``,
where ``template = prefix + "{text}" + suffix`` and ``label`` is the token of the
class's label word, then is left padded to exactly ``seq_len`` tokens. Every
batch has the same shape, so the FLOPs of a step and the bytes of the cut
activations do not depend on which reviews were drawn.

The three pieces are tokenized separately and concatenated. The body is
tokenized with the whitespace that ends the template's prefix (``" " + text``
for ``"Review: {text}"``), so the pieces meet where the byte-level
pre-tokenizer would split anyway and the ids equal those of tokenizing the
whole prompt at once. A body too long for ``seq_len`` keeps its first tokens;
the template's suffix and the label token are never cut.

Special tokens: whatever the tokenizer puts *before* the text by default
(a BOS for Llama-style tokenizers; nothing for SmolLM2) is kept at the start
of the prompt; what it appends by default (an EOS) is not, since the label
token must be the last one.
"""

from __future__ import annotations

import numpy as np
import torch

from cosim.errors import CosimError
from llm_split.tasks import Task

IGNORE_INDEX = -100
"""Value of ``labels`` where no loss is taken (PyTorch cross-entropy default)."""


def _default_prefix_ids(tokenizer) -> list[int]:
    """Special tokens the tokenizer puts before a text by default (e.g. BOS)."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return list(full[:start])
    return []


class PromptEncoder:
    """Encode texts and class labels of a task as left-padded prompt batches.

    Parameters
    ----------
    tokenizer : transformers tokenizer
        A fast tokenizer (e.g. SmolLM2's). The encoder sets
        ``padding_side = "left"`` on it, and ``pad_token = eos_token`` when it
        has none, so that any later batch call by others agrees with it.
    task : Task
        Gives the template and the label words.
    seq_len : int
        Tokens per example after padding or truncation; at least the template,
        the label token and one body token.

    Attributes
    ----------
    label_token_ids : torch.LongTensor, shape (n_classes,)
        Token of each class's label word: the word's only token, or its first
        token when it has several (``label_word_is_single_token`` says which).
    pad_token_id : int
        Id written at padded positions (their attention mask is 0).
    body_budget : int
        Most body tokens that fit: ``seq_len`` minus the template and label.
    """

    def __init__(self, tokenizer, task: Task, *, seq_len: int):
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        self.tokenizer = tokenizer
        self.task = task
        self.seq_len = int(seq_len)
        self.pad_token_id = int(tokenizer.pad_token_id)

        if task.template.count("{text}") != 1:
            raise CosimError(f"template(={task.template!r}) must hold '{{text}}' exactly once")
        prefix, suffix = task.template.split("{text}")
        # The body carries the prefix's trailing whitespace: see the module docstring.
        self._body_lead = prefix[len(prefix.rstrip()):]
        prefix = prefix.rstrip()
        encode = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"] if s else []
        self._head = _default_prefix_ids(tokenizer) + encode(prefix)
        self._tail = encode(suffix)

        pieces = [encode(word) for word in task.label_words]
        for word, ids in zip(task.label_words, pieces):
            if not ids:
                raise CosimError(f"label word {word!r} of task {task.name!r} has no token")
        first = [ids[0] for ids in pieces]
        if len(set(first)) != len(first):
            raise CosimError(
                f"label words {task.label_words!r} of task {task.name!r} must start "
                f"with distinct tokens (got first tokens {first})"
            )
        self.label_token_ids = torch.tensor(first, dtype=torch.long)
        self.label_word_is_single_token = tuple(len(ids) == 1 for ids in pieces)

        overhead = len(self._head) + len(self._tail) + 1
        self.body_budget = self.seq_len - overhead
        if self.body_budget < 1:
            raise CosimError(
                f"seq_len(={seq_len}) must be >= {overhead + 1} for task {task.name!r}: "
                f"the template and label take {overhead} tokens"
            )

    def encode(self, texts, labels) -> dict[str, torch.Tensor]:
        """Encode a batch of examples.

        Parameters
        ----------
        texts : sequence of str, length B
        labels : sequence of int, length B
            Class index of each text, in ``0 .. n_classes - 1``.

        Returns
        -------
        dict of torch.LongTensor, each of shape (B, seq_len)
            ``input_ids`` (pad id on the left, label token last),
            ``attention_mask`` (0 on the padding, 1 elsewhere) and ``labels``
            (``IGNORE_INDEX`` everywhere but the last position, which holds
            the label token; a Hugging Face causal LM shifts internally, so
            the logits at position ``seq_len - 2`` predict it).
        """
        texts = list(texts)
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(texts) != len(labels):
            raise CosimError(f"texts and labels must have the same length (got {len(texts)} and {len(labels)})")
        bad = labels[(labels < 0) | (labels >= self.task.n_classes)]
        if bad.size:
            raise CosimError(f"labels must be in 0..{self.task.n_classes - 1} (got {int(bad[0])})")

        batch = len(texts)
        input_ids = np.full((batch, self.seq_len), self.pad_token_id, dtype=np.int64)
        mask = np.zeros((batch, self.seq_len), dtype=np.int64)
        if batch:
            bodies = self._tokenize_bodies(texts)
            label_ids = self.label_token_ids.numpy()[labels]
            for row, (body, label_id) in enumerate(zip(bodies, label_ids)):
                ids = self._head + body + self._tail + [int(label_id)]
                input_ids[row, self.seq_len - len(ids):] = ids
                mask[row, self.seq_len - len(ids):] = 1
        targets = np.full_like(input_ids, IGNORE_INDEX)
        targets[:, -1] = input_ids[:, -1]
        return {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(mask),
            "labels": torch.from_numpy(targets),
        }

    def _tokenize_bodies(self, texts: list[str]) -> list[list[int]]:
        """First ``body_budget`` tokens of each body, one tokenizer call per batch.

        A long body is first cut at a space that follows a non-space character,
        a point where the byte-level pre-tokenizer splits anyway, so the tokens
        before the cut are those of the whole text; a cut text that yields fewer
        than ``body_budget`` tokens is tokenized again whole. This spares
        tokenizing the full length of long reviews to keep their first tokens.
        """
        budget = self.body_budget
        max_chars = 6 * budget + 32  # English text: 3.6-5.1 characters per token (IMDB, p1-p99)
        bodies, cut_rows = [], []
        for row, text in enumerate(texts):
            body = self._body_lead + text
            space = body.rfind(" ", 1, max_chars) if len(body) > max_chars else -1
            if space > 0 and not body[space - 1].isspace():
                body = body[:space]
                cut_rows.append(row)
            bodies.append(body)
        call = lambda strings: self.tokenizer(
            strings, add_special_tokens=False, truncation=True, max_length=budget,
        )["input_ids"]
        ids = call(bodies)
        redo = [row for row in cut_rows if len(ids[row]) < budget]
        if redo:
            for row, row_ids in zip(redo, call([self._body_lead + texts[r] for r in redo])):
                ids[row] = row_ids
        return ids

    def encode_indices(self, split: str, indices) -> dict[str, torch.Tensor]:
        """Encode the examples ``indices`` of the task's ``"train"`` or ``"test"`` split."""
        texts, labels = self.task.split(split)
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= len(texts)):
            raise CosimError(
                f"indices must be in 0..{len(texts) - 1} for the {split} split "
                f"(got {int(indices.min())}..{int(indices.max())})"
            )
        return self.encode([texts[i] for i in indices], labels[indices])

    def class_labels(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Class index of each encoded example, read from its last token; shape (B,)."""
        last = input_ids[:, -1:]
        return (last == self.label_token_ids.to(last.device)).long().argmax(dim=1)
