"""Which examples each training step and each evaluation pass uses."""

from __future__ import annotations

import numpy as np

from cosim.errors import CosimError


class ClientBatches:
    """Endless stream of mini-batches of one client's examples.

    The stream is a concatenation of random permutations of ``indices``, one
    per epoch, cut into consecutive batches of ``batch_size``. Within an epoch
    every example is drawn exactly once; a batch that crosses the end of an
    epoch takes the rest of that epoch then the start of the next (wrap-around),
    so no example is skipped. A client with fewer examples than ``batch_size``
    therefore sees each of its examples ``batch_size // n`` or one more times
    per batch, from successive epochs.

    Parameters
    ----------
    indices : array_like of int, shape (n,)
        The client's example indices (for instance one array of
        :func:`llm_split.partition.partition_iid`), n >= 1.
    batch_size : int
        Examples per batch, >= 1.
    rng : numpy.random.Generator
        Source of the permutations; the client's own stream, so that the
        batches of one client do not depend on the others.

    Attributes
    ----------
    epoch : int
        Number of complete passes over the examples so far.
    """

    def __init__(self, indices, batch_size: int, rng: np.random.Generator):
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if self.indices.size == 0:
            raise CosimError("indices(=[]) must hold at least one example")
        if batch_size < 1:
            raise CosimError(f"batch_size(={batch_size}) must be >= 1")
        self.batch_size = int(batch_size)
        self.rng = rng
        self.epoch = 0
        self._order = rng.permutation(self.indices)
        self._position = 0  # next position in self._order

    @property
    def n_examples(self) -> int:
        """Number of examples the client holds."""
        return self.indices.size

    def next_indices(self) -> np.ndarray:
        """The next batch: example indices, int64, shape (batch_size,)."""
        out = np.empty(self.batch_size, dtype=np.int64)
        filled = 0
        while filled < self.batch_size:
            take = min(self.batch_size - filled, self._order.size - self._position)
            out[filled:filled + take] = self._order[self._position:self._position + take]
            filled += take
            self._position += take
            if self._position == self._order.size:
                self.epoch += 1
                self._order = self.rng.permutation(self.indices)
                self._position = 0
        return out

    def state_dict(self) -> dict:
        """Where the stream stands (its generator's state, the epoch's order and position): plain data."""
        return {"rng": self.rng.bit_generator.state, "epoch": self.epoch, "order": self._order.tolist(),
                "position": self._position}

    def load_state_dict(self, state: dict) -> None:
        """Continue the stream from :meth:`state_dict`'s ``state``."""
        self.rng.bit_generator.state = state["rng"]
        self.epoch = int(state["epoch"])
        self._order = np.asarray(state["order"], dtype=np.int64)
        self._position = int(state["position"])


def eval_batches(encoder, texts, labels, *, batch_size: int) -> list[dict]:
    """Encode held-out examples in order, in batches of ``batch_size``.

    Parameters
    ----------
    encoder : llm_split.encoding.PromptEncoder
    texts : sequence of str, length n
    labels : array_like of int, shape (n,)
    batch_size : int
        Examples per batch (>= 1); the last batch holds the remainder.

    Returns
    -------
    list of dict
        ``ceil(n / batch_size)`` outputs of ``encoder.encode``, each with
        tensors of shape (b, seq_len).
    """
    if batch_size < 1:
        raise CosimError(f"batch_size(={batch_size}) must be >= 1")
    texts = list(texts)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(texts) != len(labels):
        raise CosimError(f"texts and labels must have the same length (got {len(texts)} and {len(labels)})")
    return [
        encoder.encode(texts[start:start + batch_size], labels[start:start + batch_size])
        for start in range(0, len(texts), batch_size)
    ]
