"""Example-based regression tests for each crash or unclear refusal that hostile input found (issue 13, item 4).

Each input once gave a traceback, a hang, a message that broke its line, or a file accepted that should
not be; now each is refused with exit status 2 and ``cosim: error:`` lines naming the file or flag, and
nothing is written. ``test_hostile_input.py`` generates such inputs by the thousand (Hypothesis).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import yaml

from _hostile import TINY_BASE, cli, files_under
from test_hostile_input import PROFILE

ROOT = Path(__file__).resolve().parents[2]


def refused(argv: list[str]) -> list[str]:
    """The error lines of a refusal (exit 2, no traceback, every line a ``cosim: error:`` line)."""
    code, out, err = cli(argv)
    assert "Traceback" not in err
    assert code == 2, (code, err)
    lines = err.splitlines()
    assert lines and all(line.startswith("cosim: error: ") for line in lines), err
    return [line.removeprefix("cosim: error: ") for line in lines]


def scenario(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- empty and non-mapping scenario files ---------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n", "null\n", "~\n", "---\n"])
def test_an_empty_scenario_file_is_refused(tmp_path, text):
    path = scenario(tmp_path, text)
    assert refused(["validate", str(path)]) == [
        f"{path}: empty scenario (expected a mapping of sections; write {{}} for a scenario of every default)"]
    out = tmp_path / "out"
    assert refused(["run", str(path), "--out", str(out), "--quiet"])[0].startswith(f"{path}: empty scenario")
    assert files_under(tmp_path) == {path}


def test_braces_are_the_scenario_of_every_default(tmp_path):
    path = scenario(tmp_path, "{}\n")
    code, out, err = cli(["validate", str(path)])
    assert code == 0, err
    assert yaml.safe_load(out)["clients"]["count"] == 4                # the default
    assert err.endswith(f"# {path}: valid\n")


@pytest.mark.parametrize("text, got", [("- a\n- b\n", "list"), ("3\n", "int"), ("text\n", "str")])
def test_a_scenario_that_is_not_a_mapping_is_refused(tmp_path, text, got):
    path = scenario(tmp_path, text)
    assert refused(["validate", str(path)]) == [f"{path}: expected a mapping of sections (got {got})"]


def test_an_empty_sweep_file_and_an_empty_sweep_base_are_refused(tmp_path):
    sweep = scenario(tmp_path, "", "sweep.yaml")
    assert refused(["sweep", str(sweep), "--dry-run"]) == [
        f"{sweep}: empty sweep file (expected a mapping with base and grid/zip/cases/seeds)"]
    scenario(tmp_path, "", "base.yaml")
    sweep.write_text("base: base.yaml\nseeds: [0, 1]\n")
    (line,) = refused(["sweep", str(sweep), "--dry-run", "--out", str(tmp_path / "out")])
    assert line.startswith(f"{tmp_path / 'base.yaml'}: empty scenario")
    assert not (tmp_path / "out").exists()


# --- values the YAML library or the checks could not take -------------------------------------------------

def test_an_integer_of_5000_digits_in_a_file_or_a_set_is_refused(tmp_path):
    path = scenario(tmp_path, "clients: {count: " + "9" * 5000 + "}\n")
    (line,) = refused(["validate", str(path)])
    assert line.startswith(f"{path}: invalid YAML: Exceeds the limit (4300 digits)")
    base = scenario(tmp_path, yaml.safe_dump(TINY_BASE), "base.yaml")
    (line,) = refused(["validate", str(base), "--set", "clients.count=" + "9" * 5000])
    assert line.startswith("--set clients.count=999") and "invalid YAML: Exceeds the limit" in line
    assert len(line) < 200                                              # the flag is cut, not echoed whole


def test_nesting_deeper_than_the_parser_can_go_is_refused(tmp_path):
    path = scenario(tmp_path, "name: " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert refused(["validate", str(path)]) == [f"{path}: invalid YAML: nested too deeply to read"]
    base = scenario(tmp_path, yaml.safe_dump(TINY_BASE), "base.yaml")
    (line,) = refused(["validate", str(base), "--set", "name=" + "[" * 100_000])
    assert line.startswith("--set name=[[[") and line.endswith("invalid YAML: nested too deeply to read")
    sweep = scenario(tmp_path, "name: " + "{a: " * 100_000, "sweep.yaml")
    assert refused(["sweep", str(sweep), "--dry-run"]) == [f"{sweep}: invalid YAML: nested too deeply to read"]


@pytest.mark.parametrize("value, message", [
    ("100000000000000000000", "expected an integer between -2^63 and 2^63 - 1 (got 100000000000000000000)"),
    ("-9223372036854775809", "expected an integer between -2^63 and 2^63 - 1 (got -9223372036854775809)"),
])
def test_an_integer_beyond_int64_is_refused(tmp_path, value, message):
    path = scenario(tmp_path, yaml.safe_dump(TINY_BASE))
    assert f"{path}: data.test_size: {message}" in refused(["validate", str(path), "--set", f"data.test_size={value}"])


def test_an_infinite_number_is_refused(tmp_path):
    path = scenario(tmp_path, yaml.safe_dump(TINY_BASE) + "compute: {server_flops_per_s: 1e400}\n")
    assert refused(["validate", str(path)]) == [
        f"{path}: compute.server_flops_per_s: expected a finite number (got '1e400')"]


def test_control_characters_in_keys_keep_each_message_on_its_line(tmp_path):
    path = scenario(tmp_path, '"a\\x00b": 1\n"c\\nd": 2\nclients: {"\\e": 3}\n')
    lines = refused(["validate", str(path)])
    assert [line.split(": unknown key")[0] for line in lines] == [
        f"{path}: 'a\\x00b'", f"{path}: 'c\\nd'", f"{path}: clients.'\\x1b'"]


def test_a_billion_laughs_is_refused_at_once_with_a_short_message(tmp_path):
    levels = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    path = scenario(tmp_path, "\n".join(levels) + "\nname: *i\nclients: {count: *i}\n")
    start = time.perf_counter()
    lines = refused(["validate", str(path)])
    assert time.perf_counter() - start < 5.0                             # 9^9 strings never built or printed
    assert f"{path}: name: expected a string (got [[[[...], [...]" in "\n".join(lines)
    assert max(len(line) for line in lines) < 400


@pytest.mark.parametrize("text", ["!!python/object/apply:os.system ['echo hostile']\n",
                                  "name: !!python/name:os.system\n"])
def test_python_tags_are_refused_not_constructed(tmp_path, text):
    path = scenario(tmp_path, text)
    (line,) = refused(["validate", str(path)])
    assert line.startswith(f"{path}: line 1, column ") and "could not determine a constructor" in line


def test_a_scenario_file_that_is_not_text_is_refused(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_bytes(b"\xff\xfe\x00name")
    assert refused(["validate", str(path)]) == [f"{path}: cannot read (UnicodeDecodeError)"]


def test_a_model_name_that_is_no_folder_and_no_hub_id_is_refused(tmp_path):
    path = scenario(tmp_path, yaml.safe_dump({**TINY_BASE, "model": {"name": "a b c"}}))
    (line,) = refused(["validate", str(path)])
    assert line.startswith(f"{path}: model.name: expected a built-in model")
    assert "'a b c' is no such folder and not a Hugging Face model id" in line


# --- profile JSON files -----------------------------------------------------------------------------------

def test_every_problem_of_a_profile_is_named_with_its_key(tmp_path, monkeypatch):
    bad = {**PROFILE, "n_layers": "four", "batch_size": 0, "lora": {"alpha": -1},
           "costs": {**PROFILE["costs"], "cuts": [1, 1, 2], "server_flops": [[1.0, "x"]] * 3}}
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(bad))
    monkeypatch.chdir(tmp_path)
    path = scenario(tmp_path, yaml.safe_dump({**TINY_BASE, "workload": {"profile": "profile.json"}}))
    lines = refused(["validate", str(path)])
    keys = [re.match(rf"{re.escape(str(path))}: workload\.profile: profile\.json: ([\w.]+): ", line).group(1)
            for line in lines]                                   # the relative name once, not twice
    assert keys == ["batch_size", "n_layers", "lora.alpha", "costs.cuts", "costs.server_flops"]


@pytest.mark.parametrize("text, message", [
    ("", "not JSON (Expecting value: line 1 column 1 (char 0))"),
    ("[" * 100_000, "not JSON that can be read (nested too deeply)"),
    ('{"n_layers": ' + "9" * 5000 + "}", "not JSON (Exceeds the limit (4300 digits) for integer string conversion"),
    ("[1, 2]", "expected a JSON object written by `cosim profile --out` (got [1, 2])"),
])
def test_a_profile_that_is_not_a_profile_is_refused(tmp_path, text, message):
    profile = tmp_path / "profile.json"
    profile.write_text(text)
    path = scenario(tmp_path, yaml.safe_dump({**TINY_BASE, "workload": {"profile": str(profile)}}))
    (line,) = refused(["validate", str(path)])
    assert line.startswith(f"{path}: workload.profile: {profile}: {message}")
    plain = scenario(tmp_path, yaml.safe_dump(TINY_BASE), "plain.yaml")
    (line,) = refused(["optimize", str(plain), "--profile", str(profile)])
    assert line.startswith(f"--profile: {profile}: {message}")
    assert files_under(tmp_path) == {path, profile, plain}


# --- availability files -----------------------------------------------------------------------------------

def test_an_availability_file_that_is_not_text_is_refused(tmp_path):
    csv = tmp_path / "av.csv"
    csv.write_bytes(b"\x00\xff\x01")
    path = scenario(tmp_path, yaml.safe_dump({**TINY_BASE, "availability": {"model": "file", "file": str(csv)}}))
    assert refused(["validate", str(path)]) == [f"{path}: availability.file: {csv}: cannot read (UnicodeDecodeError)"]


# --- files read from users: safe loading only --------------------------------------------------------------

UNSAFE = [
    (r"\byaml\.(load|unsafe_load|full_load|load_all)\(", "YAML read with a loader that builds Python objects"),
    (r"\bLoader\s*=", "a YAML loader chosen by hand"),
    (r"\bpickle\.loads?\(|\bdill\.|\bcloudpickle\.loads?\(", "pickle of a file"),
    (r"(?<![.\w])eval\(|(?<![.\w])exec\(", "eval or exec"),
    (r"allow_pickle\s*=\s*True", "numpy loading pickles"),
    (r"read_pickle\(", "pandas loading pickles"),
]


def test_the_code_reads_user_files_with_safe_loaders_only():
    sources = [p for pkg in ("cosim", "llm_split", "channel", "solver") for p in (ROOT / pkg).rglob("*.py")]
    assert len(sources) > 50
    found = []
    for path in sources:
        text = path.read_text()
        for pattern, what in UNSAFE:
            found += [f"{path.relative_to(ROOT)}: {what}: {m.group(0)}" for m in re.finditer(pattern, text)]
        for m in re.finditer(r"torch\.load\(([^)]*)\)", text):
            if "weights_only=True" not in m.group(1):
                found.append(f"{path.relative_to(ROOT)}: torch.load without weights_only=True: {m.group(0)}")
    assert found == []
    # The patterns do find what they look for.
    assert re.search(UNSAFE[0][0], "x = yaml.load(f)") and re.search(UNSAFE[3][0], "y = eval(s)")
    assert not re.search(UNSAFE[3][0], "model.eval()")
