"""Every assignment of subchannels to clients, for the exhaustive searches (brute force, the energy budget's)."""

from __future__ import annotations

import itertools

import numpy as np


def every_assignment(num_clients: int, width: int) -> np.ndarray:
    """(A, width) every map of subchannels to clients that leaves no client without one."""
    if width == 0:
        return np.zeros((1, 0), dtype=np.int64)
    every = np.array(list(itertools.product(range(num_clients), repeat=width)), dtype=np.int64)
    covered = np.all(np.any(every[:, :, None] == np.arange(num_clients), axis=1), axis=1)
    return every[covered]
