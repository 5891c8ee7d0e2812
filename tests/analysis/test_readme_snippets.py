"""The README's Python snippets, run verbatim as a user runs them: from a folder outside the clone, after
``cosim run`` and ``cosim sweep`` wrote ``./results/quickstart`` and ``./results/sweep_example`` there.

That folder's ``results/`` is a plain output folder; it used to shadow the analysis package (issue 14).
"""

import re
import subprocess
import sys
from pathlib import Path

import yaml

from cosim.cli import main

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
# The tiny model and a few examples: the snippets read the tables, not what the model learned.
TINY = ["--set", "model.name=tiny-llama", "--set", "data.max_train=24", "--set", "data.test_size=8",
        "--set", "training.seq_len=16", "--set", "training.batch_size=2", "--set", "training.local_iterations=1",
        "--set", "training.rounds=2"]


def python_snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_python_snippets_that_read_results():
    snippets = python_snippets()
    assert len(snippets) >= 3
    assert all("cosim.analysis" in s for s in snippets)
    assert not any(re.search(r"^\s*(from|import) results\b", s, flags=re.M) for s in snippets)


def test_readme_snippets_run_outside_the_clone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(ROOT / "scenarios" / "quickstart.yaml"), "--out", "results/quickstart",
                 "--quiet", *TINY]) == 0
    base = yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())
    for dotted, value in (kv.split("=", 1) for kv in TINY[1::2]):
        section, key = dotted.split(".")
        base.setdefault(section, {})[key] = yaml.safe_load(value)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(base))
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({
        "name": "sweep_example", "base": "tiny.yaml",
        "grid": {"clients.count": [4], "lora.rank": [4, 8]}}))
    assert main(["sweep", "sweep.yaml", "--quiet"]) == 0
    assert (tmp_path / "results" / "sweep_example" / "sweep.parquet").is_file()
    assert not (tmp_path / "results" / "__init__.py").exists()

    for i, snippet in enumerate(python_snippets()):
        # A fresh interpreter whose first import path is this folder (python -c puts the cwd first), as in a
        # user's session started here.
        proc = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, f"README snippet {i} failed:\n{snippet}\n{proc.stderr}"
