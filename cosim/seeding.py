"""Independent random streams derived from the scenario seed.

Every consumer (placement, each client's shadowing and fading, data
partitioning, each client's batch sampling, model initialisation) gets its own
``numpy.random.Generator`` keyed by name and index, so that adding a client or
drawing one more batch never changes another consumer's numbers.
"""

from __future__ import annotations

import zlib

import numpy as np


def _key_word(part: str | int) -> int:
    if isinstance(part, bool) or not isinstance(part, (str, int)):
        raise TypeError(f"stream key part {part!r} must be a str or an int")
    if isinstance(part, str):
        return zlib.crc32(part.encode())
    if part < 0:
        raise ValueError(f"stream key part(={part}) must be >= 0")
    return part


def stream(seed: int, *key: str | int) -> np.random.Generator:
    """Return the generator of the stream named ``key`` under ``seed``.

    ``stream(7, "fading", 3)`` is client 3's fading stream for seed 7; it does not
    depend on how many clients exist or on any other stream.
    """
    words = tuple(_key_word(part) for part in key)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=words))


def stream_int(seed: int, *key: str | int) -> int:
    """A 63-bit integer seed for libraries that take one (torch), from its own stream."""
    return int(stream(seed, *key).integers(0, 2**63 - 1))
