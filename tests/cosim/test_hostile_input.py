"""Property-based tests (Hypothesis) of hostile and malformed input (issue 13, item 4).

Every generated scenario file, ``--set`` override, sweep file, profile JSON and availability CSV is either
accepted (exit 0) or refused with exit status 2 and ``cosim: error:`` lines that each name the file or flag
at fault: never a traceback, never a file written for a refused input. Nothing here loads a model:
``cosim validate``, ``cosim sweep --dry-run``, and ``cosim run`` with the run itself stubbed out (what is
tested is everything before it). The crashes these tests found have regression tests of their own in
``test_hostile_regressions.py``.
"""

from __future__ import annotations

import copy
import os
import json
import tempfile
from pathlib import Path
from unittest import mock

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from _hostile import (LEAVES, TINY_BASE, any_value, assert_accepted_or_refused, cli, files_under, nest, pairs,
                      plausible_pair,
                      scenario_texts, set_texts)

# A bounded number of examples keeps the file at about half a minute; COSIM_HOSTILE_EXAMPLES=5000 hunts longer.
EXAMPLES = int(os.environ.get("COSIM_HOSTILE_EXAMPLES", "200"))
FAST = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _outcome(code: int) -> int:
    event("accepted" if code == 0 else "refused")
    return code


def _folder():
    return tempfile.TemporaryDirectory(prefix="cosim-hostile-")


@FAST
@given(text=scenario_texts())
def test_any_scenario_file_is_accepted_or_refused_naming_the_file(text):
    with _folder() as tmp:
        path = Path(tmp) / "s.yaml"
        path.write_text(text)
        code, out, err = cli(["validate", str(path)])
        assert_accepted_or_refused(_outcome(code), err, where=(str(path),))
        if code == 0:
            assert yaml.safe_load(out)["model"]["name"]          # the resolved scenario was printed
        assert files_under(tmp) == {path}


@FAST
@given(overrides=st.lists(set_texts, max_size=4), seed=st.none() | st.integers(-3, 2**64))
def test_any_set_override_is_accepted_or_refused_naming_it(overrides, seed):
    with _folder() as tmp:
        path = Path(tmp) / "s.yaml"
        path.write_text(yaml.safe_dump(TINY_BASE))
        argv = ["validate", str(path), *(f"--set={o}" for o in overrides)]
        argv += [] if seed is None else [f"--seed={seed}"]
        code, _, err = cli(argv)
        assert_accepted_or_refused(_outcome(code), err, where=(str(path), "--set", "--seed"))
        assert files_under(tmp) == {path}


@settings(FAST, max_examples=EXAMPLES // 2)
@given(text=scenario_texts(), overrides=st.lists(set_texts, max_size=2))
def test_cosim_run_refuses_before_writing_anything(text, overrides):
    with _folder() as tmp:
        path, out = Path(tmp) / "s.yaml", Path(tmp) / "out"
        path.write_text(text)
        with mock.patch("cosim.run.run_scenario", side_effect=_Ran) as ran:
            try:
                code, _, err = cli(["run", str(path), "--out", str(out), "--quiet", *(f"--set={o}" for o in overrides)])
            except _Ran:
                code, err = 0, ""
        assert_accepted_or_refused(_outcome(code), err, where=(str(path), "--set"))
        assert (code == 0) == ran.called
        assert files_under(tmp) == {path}


class _Ran(Exception):
    """Raised by the stubbed run: the scenario got past every check."""


# --- sweep files ------------------------------------------------------------------------------------

dotted_keys = st.sampled_from(sorted(LEAVES)) | st.text(max_size=10) | st.integers(-1, 1)
value_lists = st.lists(any_value, max_size=3) | any_value
sweep_parts = st.fixed_dictionaries({}, optional={
    "name": st.text(max_size=8) | any_value,
    "base": st.sampled_from(["base.yaml", "empty.yaml", "missing.yaml", ".", "", "\x00", "../base.yaml"]) | any_value,
    "grid": st.dictionaries(dotted_keys, value_lists, max_size=3) | any_value,
    "zip": st.dictionaries(dotted_keys, value_lists, max_size=2) | any_value,
    "cases": st.lists(st.dictionaries(dotted_keys, any_value, max_size=2) | any_value, max_size=3) | any_value,
    "seeds": st.lists(st.integers(-2, 3) | any_value, max_size=3) | any_value,
    "slurm": st.dictionaries(st.sampled_from(["cluster", "partition", "time_min", "cpus_per_task", "gpus_per_node",
                                              "mem_gb", "array_parallelism", "other"]), any_value, max_size=3)
    | any_value,
    "extra": any_value,
})


plausible_lists = plausible_pair().flatmap(lambda kv: st.tuples(
    st.just(kv[0]), st.lists(st.just(kv[1]) | st.sampled_from([1, 2, 4, 0.5, "x", None]), min_size=1, max_size=3)))
plausible_sweeps = st.fixed_dictionaries({"base": st.just("base.yaml")}, optional={
    "name": st.sampled_from(["s", "a b", "", "x/y", "\x00"]),
    "grid": st.lists(plausible_lists, max_size=2).map(dict),
    "zip": st.lists(plausible_lists, max_size=2).map(dict),
    "cases": st.lists(st.lists(plausible_pair(), min_size=1, max_size=2).map(dict), max_size=2),
    "seeds": st.lists(st.integers(-1, 4), max_size=3),
    "slurm": st.fixed_dictionaries({}, optional={"cluster": st.sampled_from(["slurm", "local", "debug", "x"]),
                                                 "mem_gb": st.sampled_from([1, 0, -1, 1e400, "8", True]),
                                                 "time_min": st.integers(-1, 2)}),
})


@FAST
@given(body=plausible_sweeps | plausible_sweeps | sweep_parts | any_value, raw_text=st.none() | st.none() | st.text(max_size=40))
def test_any_sweep_file_is_accepted_or_refused_naming_the_file(body, raw_text):
    with _folder() as tmp:
        folder = Path(tmp)
        (folder / "base.yaml").write_text(yaml.safe_dump(TINY_BASE))
        (folder / "empty.yaml").write_text("")
        path = folder / "sweep.yaml"
        path.write_text(raw_text if raw_text is not None else yaml.safe_dump(body))
        before = files_under(folder)
        code, _, err = cli(["sweep", str(path), "--dry-run", "--out", str(folder / "out")])
        assert_accepted_or_refused(_outcome(code), err, where=(str(path), str(folder)))
        assert files_under(folder) == before


# --- profile JSON files (workload.profile) ----------------------------------------------------------

# A valid profile of tiny-llama at the scenario's batch and sequence length (cuts 1-3, ranks 4 and 8).
PROFILE = {
    "model": "tiny-llama", "n_layers": 4, "task": "imdb", "batch_size": 4, "seq_len": 96,
    "activation_dtype": "float32", "lora": {"alpha": 16.0, "dropout": 0.0, "target_modules": None},
    "costs": {"cuts": [1, 2, 3], "ranks": [4, 8],
              "client_forward_flops": [[2.4e7, 2.5e7], [4.8e7, 5.0e7], [7.2e7, 7.5e7]],
              "client_backward_flops": [[2.7e7, 2.8e7], [5.8e7, 6.1e7], [8.9e7, 9.4e7]],
              "server_flops": [[3.4e9, 3.4e9], [3.3e9, 3.3e9], [3.3e9, 3.3e9]],
              "activation_bytes": [69632.0, 69632.0, 69632.0], "gradient_bytes": [65536.0, 65536.0, 65536.0],
              "client_adapter_bytes": [[3584.0, 7168.0], [7168.0, 14336.0], [10752.0, 21504.0]]},
    "server_adapter_bytes": [[10752.0, 21504.0], [7168.0, 14336.0], [3584.0, 7168.0]],
    "adapter_element_bytes": 4.0,
    "pilot": {"rounds": 2, "ranks": [4, 8], "clients": 2, "local_iterations": 1, "seed": 0, "cut_layer": 2,
              "test_size": 128, "lr": 1e-3, "weight_decay": 0.0, "task": "imdb", "partition": "iid",
              "lora_alpha": 16.0, "eval_loss": {"4": [0.9, 0.7, 0.6], "8": [0.9, 0.65, 0.55]},
              "accuracy": {"4": [0.5, 0.6, 0.7], "8": [0.5, 0.62, 0.72]},
              "target": {"metric": "loss", "value": None, "max_rounds": None, "tolerance": None}},
}
PROFILE_PATHS = ["model", "n_layers", "batch_size", "seq_len", "activation_dtype", "lora", "lora.target_modules",
                 "lora.alpha", "costs", *(f"costs.{k}" for k in PROFILE["costs"]), "server_adapter_bytes",
                 "adapter_element_bytes", "pilot", "pilot.rounds", "pilot.ranks", "pilot.eval_loss",
                 "pilot.eval_loss.4", "pilot.accuracy.8", "pilot.target", "pilot.target.metric", "pilot.target.value",
                 "pilot.target.max_rounds", "pilot.target.tolerance", "pilot.test_size", "pilot.lr", "other"]
numbers = st.integers(-2, 10) | st.floats(allow_nan=True, allow_infinity=True) | any_value
arrays = st.lists(numbers, max_size=4) | st.lists(st.lists(numbers, max_size=3), max_size=4)
profile_edits = (st.lists(st.tuples(st.sampled_from(PROFILE_PATHS), arrays | any_value), max_size=4)
                 | st.lists(st.tuples(st.sampled_from(PROFILE_PATHS), st.sampled_from([
                     [1, 2, 3], [4, 8], [[1.0, 2.0]] * 3, [1.0, 2.0, 3.0], [0.5, 0.4, 0.3], 0, 1, 2, 2.5, None, "loss",
                     "accuracy", {"metric": "accuracy", "value": 0.7}, {"4": [1, 2]}, [], [[]], [[0, 0]] * 3])),
                            max_size=2))


def _edit(edits) -> dict:
    doc = copy.deepcopy(PROFILE)
    return nest(edits, doc) if edits else doc


@FAST
@given(doc=profile_edits.map(_edit) | any_value, junk=st.none() | st.text(max_size=30),
       use=st.sampled_from([{}, {"workload.kind": "replay"}, {"allocation.policy": "optimizer"},
                            {"allocation.policy": "split_rank_only", "workload.kind": "replay"}]))
def test_any_profile_file_is_accepted_or_refused_naming_the_scenario_and_the_profile(doc, junk, use):
    with _folder() as tmp:
        folder = Path(tmp)
        profile = folder / "profile.json"
        profile.write_text(junk if junk is not None else json.dumps(doc, allow_nan=True))
        path = folder / "s.yaml"
        path.write_text(yaml.safe_dump(nest([("workload.profile", str(profile)), *use.items()], TINY_BASE)))
        code, _, err = cli(["validate", str(path)])
        assert_accepted_or_refused(_outcome(code), err, where=(f"{path}: workload.profile: {profile}",))
        assert files_under(folder) == {path, profile}


@settings(FAST, max_examples=EXAMPLES // 2)
@given(doc=profile_edits.map(_edit))
def test_cosim_optimize_accepts_or_refuses_any_profile(doc):
    with _folder() as tmp:
        folder = Path(tmp)
        profile = folder / "profile.json"
        profile.write_text(json.dumps(doc, allow_nan=True))
        path = folder / "s.yaml"
        path.write_text(yaml.safe_dump(TINY_BASE))
        code, _, err = cli(["optimize", str(path), "--profile", str(profile)])
        assert_accepted_or_refused(_outcome(code), err, where=(f"--profile: {profile}",))
        assert files_under(folder) == {path, profile}


# --- availability files (availability.file) ---------------------------------------------------------

cells = (st.integers(0, 2).map(str) | st.integers(0, 2).map(str) | st.floats(0, 100).map(repr)
         | st.floats(0, 100).map(repr) | st.integers(-2, 3).map(str) | st.floats(allow_nan=True, allow_infinity=True).map(repr)
         | st.sampled_from(["", " ", "inf", "-inf", "nan", "1e400", "0x1", "1_0", "\x00", '"', "client"])
         | st.text(max_size=5))
csv_rows = st.lists(st.lists(cells, min_size=3, max_size=3) | st.lists(cells, max_size=4), max_size=6)
headers = st.sampled_from(["client,start_s,end_s", "client,start_s,end_s", "client, start_s, end_s", "client,start_s", "", "\ufeffclient,"
                           "start_s,end_s", "start_s,client,end_s"])


@FAST
@given(header=headers, rows=csv_rows, junk=st.none() | st.none() | st.binary(max_size=30),
       mode=st.sampled_from(["barrier", "deadline", "fedasync"]))
def test_any_availability_file_is_accepted_or_refused_naming_the_scenario(header, rows, junk, mode):
    with _folder() as tmp:
        folder = Path(tmp)
        csv_path = folder / "av.csv"
        if junk is not None:
            csv_path.write_bytes(junk)
        else:
            csv_path.write_text("\n".join([header, *(",".join(r) for r in rows)]) + "\n")
        path = folder / "s.yaml"
        extra = [("availability.model", "file"), ("availability.file", str(csv_path)), ("aggregation.mode", mode),
                 ("aggregation.deadline_s", 5.0 if mode == "deadline" else None)]
        path.write_text(yaml.safe_dump(nest(extra, TINY_BASE)))
        code, _, err = cli(["validate", str(path)])
        assert_accepted_or_refused(_outcome(code), err, where=(f"{path}: availability.file: {csv_path}",
                                                    f"{path}: aggregation.", f"{path}: availability."))
        assert files_under(folder) == {path, csv_path}
