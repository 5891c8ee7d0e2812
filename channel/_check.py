"""Argument checks shared by the channel modules.

Each check returns the value as a float (or float array) and raises a
``ValueError`` that names the argument and its value, e.g.
``radius_m(=-1.0) must be > 0``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def positive(name: str, value: ArrayLike) -> np.ndarray:
    """Return ``value`` as floats; every entry must be finite and > 0."""
    x = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(x) & (x > 0.0)):
        raise ValueError(f"{name}(={value!r}) must be > 0 and finite")
    return x


def non_negative(name: str, value: ArrayLike) -> np.ndarray:
    """Return ``value`` as floats; every entry must be finite and >= 0."""
    x = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(x) & (x >= 0.0)):
        raise ValueError(f"{name}(={value!r}) must be >= 0 and finite")
    return x


def count(name: str, value: int) -> int:
    """Return ``value`` as an int; it must be an integer >= 0."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}(={value!r}) must be an integer >= 0")
    if value < 0:
        raise ValueError(f"{name}(={value!r}) must be an integer >= 0")
    return int(value)
