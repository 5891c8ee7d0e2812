"""Same scenario and seed, same events: whatever the machine's thread settings or the sweep's workers.

``runtime.threads`` fixes torch's intra-op threads for the training work. The
scenario below gives different losses at 1 and 2 threads (a split matmul sums in
another order), so without the setting the two environments would disagree.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cosim.cli import main
from cosim.scenario.load import apply_overrides

ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "model.name": "tiny-llama", "split.cut_layer": 2, "clients.count": 3, "training.rounds": 2,
    "training.local_iterations": 2, "training.seq_len": 32, "data.test_size": 8, "data.max_train": 200,
    "compute.client_flops_per_s": 1e12,
}


def tiny_scenario(folder: Path, **extra) -> Path:
    raw, problems = apply_overrides(yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text()),
                                    {**TINY, **extra}.items())
    assert not problems
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run_in_process(scenario: Path, out: Path, threads: str) -> None:
    """``cosim run`` in a fresh process whose OpenMP / MKL default is ``threads`` threads."""
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    proc = subprocess.run([sys.executable, "-m", "cosim", "run", str(scenario), "--out", str(out), "--quiet"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_machines_thread_count_changes_no_event_and_no_loss(tmp_path):
    scenario = tiny_scenario(tmp_path)
    for threads in ("1", "2"):
        run_in_process(scenario, tmp_path / f"omp{threads}", threads)
    one, two = (pd.read_parquet(tmp_path / f"omp{t}" / "events.parquet") for t in ("1", "2"))
    assert one["loss"].notna().sum() == 12
    pd.testing.assert_frame_equal(one.drop(columns=["wall_s"], errors="ignore"),
                                  two.drop(columns=["wall_s"], errors="ignore"))
    summaries = [json.loads((tmp_path / f"omp{t}" / "summary.json").read_text()) for t in ("1", "2")]
    assert [s["runtime"] for s in summaries] == [{"device": "cpu", "base_dtype": "float32", "threads": 1}] * 2
    assert summaries[0]["final_train_loss"] == summaries[1]["final_train_loss"]
    assert summaries[0]["after"] == summaries[1]["after"]


def test_a_sweep_gives_each_run_the_same_events_whatever_the_workers(tmp_path):
    tiny_scenario(tmp_path)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"name": "w", "base": "tiny.yaml", "seeds": [0, 1]}))
    for workers in ("1", "2"):
        assert main(["sweep", str(sweep), "--out", str(tmp_path / f"w{workers}"), "--workers", workers,
                     "--quiet"]) == 0
    runs = sorted(p.name for p in (tmp_path / "w1" / "runs").iterdir() if not p.name.startswith("."))
    assert len(runs) == 2
    assert runs == sorted(p.name for p in (tmp_path / "w2" / "runs").iterdir() if not p.name.startswith("."))
    for run_id in runs:
        one, two = (pd.read_parquet(tmp_path / w / "runs" / run_id / "events.parquet") for w in ("w1", "w2"))
        pd.testing.assert_frame_equal(one.drop(columns=["wall_s"], errors="ignore"),
                                      two.drop(columns=["wall_s"], errors="ignore"))
        assert one["loss"].notna().any()


@pytest.mark.parametrize("threads", [0, 1.5, "two"])
def test_a_bad_thread_count_is_refused_naming_the_key(tmp_path, capsys, threads):
    scenario = tiny_scenario(tmp_path)
    assert main(["run", str(scenario), "--out", str(tmp_path / "out"), "--set", f"runtime.threads={threads}"]) == 2
    err = capsys.readouterr().err
    assert "runtime.threads" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="torch sees a GPU here")
def test_cuda_without_a_gpu_is_refused_naming_the_key(tmp_path, capsys):
    scenario = tiny_scenario(tmp_path)
    assert main(["run", str(scenario), "--out", str(tmp_path / "out"), "--set", "runtime.device=cuda"]) == 2
    err = capsys.readouterr().err
    assert "runtime.device" in err and "no GPU" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_auto_and_bfloat16_run_and_are_recorded(tmp_path):
    import torch

    out = tmp_path / "out"
    scenario = tiny_scenario(tmp_path, **{"runtime.device": "auto", "runtime.base_dtype": "bfloat16",
                                          "runtime.threads": 2, "training.rounds": 1})
    assert main(["run", str(scenario), "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    device = "cuda" if torch.cuda.is_available() else "cpu"
    assert summary["runtime"] == {"device": device, "base_dtype": "bfloat16", "threads": 2}
    events = pd.read_parquet(out / "events.parquet")
    up = events[events.kind == "uplink"].iloc[0]
    assert up["bytes"] == 4 * 32 * 64 * 2 + 2 * 4 * 32 * 8  # bfloat16 hidden (B, T, H), int64 mask and labels
