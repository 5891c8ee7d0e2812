"""Typed scenario sections: a field declaration and a checker that reports every problem.

A section is a frozen dataclass whose fields are declared with :func:`setting`
(default, documentation, bounds). :func:`parse_section` turns a YAML mapping into
that dataclass, rejecting unknown keys and collecting every problem as
``dotted.path: what was expected (got X)`` instead of stopping at the first.
"""

from __future__ import annotations

import dataclasses
import math
import reprlib
import types
import typing
from typing import Any, Literal, Union

_MISSING = object()
INT_LIMIT = 2**63


def setting(default: Any, *, doc: str, gt: float | None = None, ge: float | None = None,
            lt: float | None = None, le: float | None = None) -> Any:
    """Declare a scenario field with its default, its documentation and numeric bounds."""
    meta = {"doc": doc, "gt": gt, "ge": ge, "lt": lt, "le": le}
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for sequence defaults so sections stay immutable")
    return dataclasses.field(default=default, metadata=meta)


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        text = " or ".join(_describe(a) for a in args)
        return text + (" or null" if len(args) < len(typing.get_args(tp)) else "")
    if origin is tuple:
        return f"a list of {_describe(typing.get_args(tp)[0])}s"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


def key_text(key: Any) -> str:
    """A mapping key as it reads in a dotted path: plain text as is, anything else (a number, an empty or
    padded string, control characters that would break the message's line) as its ``repr``."""
    if isinstance(key, str) and key and key.strip() == key and key.isprintable():
        return key
    return repr(key)


# Bounded: a value in a message is at most a few items deep and wide, so that a YAML "billion laughs"
# (aliases of aliases, 9^9 items that share 90 lists) prints in microseconds instead of never.
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict, _REPR.maxset = 3, 6, 6, 6, 6
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 60


def short(value: Any) -> str:
    """``repr(value)`` cut to about 60 characters, without ever building the whole text of a huge value."""
    try:
        text = repr(value) if isinstance(value, (str, float, bool, type(None))) else _REPR.repr(value)
    except ValueError:  # an integer beyond Python's 4300-digit limit for text conversion
        text = f"an integer of {value.bit_length()} bits"
    return text if len(text) <= 60 else text[:57] + "..."


_short = short


def _number(value: Any) -> float | None:
    """A YAML number, also from strings such as '180e3' that YAML 1.1 reads as text."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            return float(value)
    except OverflowError:   # an integer beyond the largest float
        return math.inf
    except ValueError:
        return None
    return None


class _Mismatch(Exception):
    pass


def _coerce(tp: Any, value: Any, path: str, problems: list[str]) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            trial: list[str] = []
            try:
                out = _coerce(arg, value, path, trial)
            except _Mismatch:
                continue
            problems.extend(trial)
            return out
        raise _Mismatch
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise _Mismatch
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        (item_tp, *_rest) = typing.get_args(tp)
        out = []
        for i, item in enumerate(value):
            try:
                out.append(_coerce(item_tp, item, f"{path}[{i}]", problems))
            except _Mismatch:
                problems.append(f"{path}[{i}]: expected {_describe(item_tp)} (got {_short(item)})")
        return tuple(out)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _Mismatch
        return parse_section(tp, value, path, problems)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            if not -INT_LIMIT <= value < INT_LIMIT:   # every integer setting goes into numpy's int64 somewhere
                problems.append(f"{path}: expected an integer between -2^63 and 2^63 - 1 (got {_short(value)})")
            return value
        raise _Mismatch
    if tp is float:
        number = _number(value)
        if number is None or math.isnan(number):
            raise _Mismatch
        if math.isinf(number):   # no setting means anything at infinity (null says "none" where it may)
            problems.append(f"{path}: expected a finite number (got {_short(value)})")
        return number
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    raise TypeError(f"unsupported scenario field type {tp!r} at {path}")


def _check_bounds(meta: dict, value: Any, path: str, problems: list[str]) -> None:
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        for key, ok, word in (("gt", lambda a, b: a > b, ">"), ("ge", lambda a, b: a >= b, ">="),
                              ("lt", lambda a, b: a < b, "<"), ("le", lambda a, b: a <= b, "<=")):
            bound = meta.get(key)
            if bound is not None and not ok(v, bound):
                problems.append(f"{path}: expected a value {word} {bound:g} (got {_short(v)})")
                return


def section_fields(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    """The fields of a section with their resolved type annotations."""
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]


def parse_section(cls: type, raw: dict, path: str, problems: list[str]) -> Any:
    """Build section ``cls`` from mapping ``raw``; append problems (in file order), return None if any."""
    fields = {f.name: (f, tp) for f, tp in section_fields(cls)}
    before = len(problems)
    kwargs = {}
    for key, value in raw.items():
        where = f"{path}.{key_text(key)}" if path else key_text(key)
        if key not in fields:
            problems.append(f"{where}: unknown key (valid keys: {', '.join(sorted(fields))})")
            continue
        field, tp = fields[key]
        try:
            value = _coerce(tp, value, where, problems)
        except _Mismatch:
            problems.append(f"{where}: expected {_describe(tp)} (got {_short(value)})")
            continue
        _check_bounds(field.metadata, value, where, problems)
        kwargs[key] = value
    for name, (field, tp) in fields.items():
        if name not in raw and dataclasses.is_dataclass(tp):
            kwargs[name] = parse_section(tp, {}, f"{path}.{name}" if path else name, problems)
    if len(problems) > before:
        return None
    return cls(**kwargs)


def to_plain(section: Any) -> Any:
    """A section as plain YAML-able data (tuples become lists)."""
    if dataclasses.is_dataclass(section):
        return {f.name: to_plain(getattr(section, f.name)) for f in dataclasses.fields(section)}
    if isinstance(section, tuple):
        return [to_plain(v) for v in section]
    return section
