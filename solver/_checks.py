"""Argument checks shared by the solver's records: each appends a message to a list.

Records validate everything first and raise one ``ValueError`` listing every
problem (``name: what was expected (got X)``), as the project's style asks.
"""

from __future__ import annotations

import numpy as np


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def as_array(
    problems: list[str],
    name: str,
    value,
    shape: tuple[int, ...],
    *,
    dtype=float,
    lower: float | None = None,
    strict: bool = False,
) -> np.ndarray:
    """Return ``value`` as a read-only array of ``shape`` (scalars broadcast).

    Appends a message to ``problems`` when the value has the wrong shape, is not
    finite, or is below ``lower`` (``<= lower`` when ``strict``). On a problem the
    returned array is a placeholder of the right shape so later checks can run.
    """
    try:
        array = np.array(value, dtype=dtype)
    except (TypeError, ValueError):
        problems.append(f"{name}: expected numbers of shape {shape} (got {_describe(value)})")
        return np.zeros(shape, dtype=dtype)
    if array.ndim == 0 and shape != ():
        array = np.full(shape, array, dtype=dtype)
    if array.shape != shape:
        problems.append(f"{name}: expected shape {shape} (got {array.shape})")
        return np.zeros(shape, dtype=dtype)
    if not np.all(np.isfinite(array)):
        problems.append(f"{name}: expected finite values (got {_describe(value)})")
    elif lower is not None:
        bad = array <= lower if strict else array < lower
        if np.any(bad):
            relation = ">" if strict else ">="
            first = array[bad].flat[0].item()
            problems.append(f"{name}: expected every value {relation} {lower} (got {first!r})")
    array.setflags(write=False)
    return array


def check_int(problems: list[str], name: str, value, *, lower: int) -> int:
    """Return ``value`` as an int ``>= lower``, appending a message otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lower:
        problems.append(f"{name}: expected an integer >= {lower} (got {value!r})")
        return lower
    return int(value)


def check_optional_positive(problems: list[str], name: str, value) -> float | None:
    """Return ``None`` or a finite float ``> 0``, appending a message otherwise."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not np.isfinite(number) or number <= 0:
        problems.append(f"{name}: expected None or a finite number > 0 (got {value!r})")
        return None
    return number
