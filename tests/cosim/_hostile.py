"""Hypothesis strategies for hostile input: scenario documents, ``--set`` overrides, sweep files, profiles,
availability files; and a CLI runner that tells a refusal (exit 2, messages) from a crash (an exception).

The documents are built from the scenario's own schema (every dotted key and its type, literal options and
bounds) mixed with values of every YAML type, unknown keys and plain junk, so that both the type checks
and the checks that follow them (cross-field, the model's configuration, the files a scenario names) run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import types
import typing
from pathlib import Path
from typing import Literal, Union

import yaml
from hypothesis import strategies as st

from cosim.cli import main
from cosim.scenario.fields import section_fields
from cosim.scenario.schema import Scenario

# A scenario that is valid and quick to check (no model hub, no weights): the base the documents mutate.
TINY_BASE = {"model": {"name": "tiny-llama"}, "split": {"cut_layer": 2}, "clients": {"count": 2},
             "training": {"rounds": 2, "local_iterations": 1}}


def schema_leaves(cls=Scenario, prefix: str = "") -> dict[str, object]:
    """Every leaf setting of the scenario: dotted path -> its type annotation."""
    out = {}
    for field, tp in section_fields(cls):
        path = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(tp):
            out.update(schema_leaves(tp, path + "."))
        else:
            out[path] = (tp, field.metadata)
    return out


LEAVES = schema_leaves()
SECTIONS = sorted({p.rsplit(".", 1)[0] for p in LEAVES if "." in p})

# Any YAML value: scalars of every type (huge integers, NaN, infinities, odd text), lists and mappings.
scalars = (st.none() | st.booleans() | st.integers() | st.integers(-3, 3)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
           | st.sampled_from(["", "1e3", "inf", "-inf", "nan", "0x10", "null", "~", "yes", "\x00", "a/b", "..",
                              "/", "-1", "1e400", "tiny-llama", "q_proj", "split", "file", "replay"]))
any_value = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                         | st.dictionaries(st.text(max_size=8) | st.integers(-2, 2), inner, max_size=3),
                         max_leaves=8)


def _plausible(tp, meta) -> st.SearchStrategy:
    """Values of the right type near the field's bounds (to reach the checks after the type checks)."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return st.one_of([_plausible(a, meta) if a is not type(None) else st.none() for a in typing.get_args(tp)])
    if origin is Literal:
        return st.sampled_from(typing.get_args(tp))
    if origin is tuple:
        return st.lists(_plausible(typing.get_args(tp)[0], meta), max_size=4)
    bounds = [b for b in (meta.get("gt"), meta.get("ge"), meta.get("lt"), meta.get("le")) if b is not None]
    if tp is int:
        near = [int(b) + d for b in bounds for d in (-1, 0, 1)]
        return st.sampled_from(near or [0]) | st.integers(-5, 100) | st.sampled_from([10**6, 10**12, 2**63, 10**30])
    if tp is float:
        near = [float(b) + d for b in bounds for d in (-1e-9, 0.0, 0.5)]
        return (st.sampled_from(near or [0.0]) | st.floats(-1e3, 1e3) | st.sampled_from([1e-300, 1e300, math.inf])
                | st.floats(allow_nan=True, allow_infinity=True))
    if tp is bool:
        return st.booleans()
    if tp is str:
        return st.text(max_size=12) | st.sampled_from(["tiny-llama", "tiny-gpt2", "nowhere.csv", "/", "a/b/c",
                                                      "\x00", " ", "tiny-llama\n"])
    return any_value


def plausible_pair() -> st.SearchStrategy:
    path = st.sampled_from(sorted(LEAVES))
    return path.flatmap(lambda p: st.tuples(st.just(p), _plausible(*LEAVES[p]) | _plausible(*LEAVES[p])
                                            | any_value))


junk_pair = st.tuples(st.sampled_from(SECTIONS) | st.text(max_size=10)
                      | st.sampled_from([p + ".x" for p in sorted(LEAVES)[:20]]), any_value)
# Mostly a few settings with values of their own type (so that many documents pass the type checks and
# reach the checks after them), sometimes junk.
pairs = st.lists(plausible_pair(), max_size=3) | st.lists(plausible_pair() | junk_pair, max_size=6)


def nest(pairs_: list[tuple[str, object]], base: dict | None = None) -> dict:
    """A mapping with each dotted path set (a later pair may replace an earlier section by a scalar)."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in (base or {}).items()}
    for path, value in pairs_:
        node = out
        parts = str(path).split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return out


@st.composite
def scenario_texts(draw) -> str:
    """The text of a scenario file: mostly a mutated valid scenario, sometimes any YAML or any text."""
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "any", "text"]))
    if kind == "text":
        return draw(st.text(max_size=80) | st.sampled_from(["", "   \n", "# only a comment\n", "{}", "[]", "null",
                                                           "- a\n- b\n", "a: [\n", "!!python/object:os.system {}",
                                                           "a: &x [*x]\n", "? [1, 2]\n: 3\n", "\t x: 1",
                                                           # an integer beyond Python's 4300 digits, nesting
                                                           # beyond the parser's recursion (both crashed once)
                                                           "clients: {count: " + "9" * 5000 + "}", "name: " + "[" * 3000]))
    doc = draw(any_value) if kind == "any" else nest(draw(pairs), TINY_BASE)
    return yaml.safe_dump(doc, allow_unicode=draw(st.booleans()))


# --set texts: well-formed dotted keys of the schema with YAML values, and junk.
plausible_sets = plausible_pair().map(lambda kv: f"{kv[0]}={yaml.safe_dump(kv[1], default_flow_style=True).strip()}"
                                    .removesuffix("\n...").removesuffix(" ..."))
set_texts = plausible_sets | plausible_sets | (st.tuples(st.sampled_from(sorted(LEAVES)) | st.sampled_from(SECTIONS) | st.text(max_size=10),
                       st.sampled_from(["=", "= ", "==", ":", ""]),
                       st.text(max_size=12) | st.sampled_from(["[1, 2]", "{a: 1}", "null", "1e-3", "[", "'", "!!binary x",
                                                               "*x", "&a 1", "10000000000000000000000", "tiny-gpt2",
                                                               "9" * 5000, "[" * 3000]))
             .map(lambda t: "".join(t)))


def cli(argv: list[str]) -> tuple[int, str, str]:
    """Run ``cosim`` in this process: (exit status, stdout, stderr). An exception (a crash) propagates."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:       # argparse's own usage errors
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def assert_accepted_or_refused(code: int, err: str, *, where: tuple[str, ...]) -> None:
    """Exit 0, or exit 2 with only ``cosim: error:`` lines, each naming a place in ``where`` (a file, a flag)."""
    assert "Traceback" not in err
    assert code in (0, 2), (code, err)
    if code == 2:
        errors = [line for line in err.splitlines() if line.startswith("cosim: error: ")]
        assert errors, err
        for line in errors:
            assert line.removeprefix("cosim: error: ").startswith(where), (line, where)


def files_under(folder: Path) -> set[Path]:
    return {p for p in Path(folder).rglob("*")}
