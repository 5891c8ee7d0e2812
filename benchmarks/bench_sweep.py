"""Sweep throughput: runs per minute of ``cosim sweep`` with 1 and 2 workers.

Writes a sweep of ``--runs`` (default 8) small CPU-bound runs (tiny-llama, 2 clients,
2 rounds of 4 local iterations: several seconds of real torch compute each, little I/O;
the runs differ by seed) and times the whole ``cosim sweep SWEEP --workers W --quiet``
command for each worker count, as a user would run it: process start-up, imports,
model building and every run included, each time into a fresh folder. The worker
counts are timed in turn ``--repeat`` times and the fastest of each is kept, so that a
busy machine disturbs them alike. Prints runs per minute and the speed-up of the most
workers over one (target: >= 1.8 on 2 cores).

Each run's torch uses ``runtime.threads`` threads (default 1, ``--threads``), whatever
the engine or the number of workers (the local engine no longer derives it from the cores),
so W workers use W x threads cores; the script first checks the thread count a run's
torch really gets. ``--engine dask`` times the Dask engine (a LocalCluster of W
single-threaded worker processes).

    .venv/bin/python benchmarks/bench_sweep.py [--runs N] [--workers 1,2] [--repeat R] [--engine local|dask]
        [--threads T]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cosim.scenario.load import apply_overrides  # noqa: E402
from cosim.sweep.local import usable_cores  # noqa: E402

RUN = {
    "model.name": "tiny-llama", "split.cut_layer": 2, "data.test_size": 8, "data.max_train": 200,
    "training.seq_len": 48, "training.rounds": 2, "training.local_iterations": 4, "clients.count": 2,
    "compute.client_flops_per_s": 1e12,
}


def write_bench_sweep(folder: Path, n_runs: int, rounds: int = RUN["training.rounds"], threads: int = 1) -> Path:
    """A base scenario (the quickstart with ``RUN``, ``rounds`` rounds) and a sweep of ``n_runs`` seeds of it."""
    raw, problems = apply_overrides(yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text()),
                                    {**RUN, "training.rounds": rounds, "runtime.threads": threads}.items())
    assert not problems, problems
    (folder / "base.yaml").write_text(yaml.safe_dump(raw))
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "bench", "base": "base.yaml", "seeds": list(range(n_runs))}))
    return path


def run_threads(sweep_out: Path) -> set[int]:
    """The torch threads every finished run of a sweep folder recorded (``summary.json``'s runtime)."""
    import json

    return {json.loads(p.read_text())["runtime"]["threads"] for p in sweep_out.glob("runs/*/summary.json")}


def time_sweep(path: Path, out: Path, workers: int, engine: str, env: dict[str, str] | None = None) -> float:
    """Wall seconds of the whole ``cosim sweep`` command (``env``: extra environment variables)."""
    cmd = [sys.executable, "-m", "cosim", "sweep", str(path), "--out", str(out), "--workers", str(workers),
           "--engine", engine, "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})})
    wall_s = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return wall_s


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=8, help="runs in the sweep (default 8)")
    ap.add_argument("--rounds", type=int, default=RUN["training.rounds"],
                    help=f"training rounds per run (default {RUN['training.rounds']}): more rounds, "
                         "more compute per run against the fixed start-up of the command and its workers")
    ap.add_argument("--workers", default="1,2", help="worker counts to time (default 1,2)")
    ap.add_argument("--engine", default="local", choices=["local", "dask"])
    ap.add_argument("--repeat", type=int, default=2, help="time each worker count this many times, in turn")
    ap.add_argument("--threads", type=int, default=1, help="runtime.threads of every run (default 1)")
    args = ap.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]
    print(f"usable cores {usable_cores()}, load average {os.getloadavg()[0]:.2f} (1 min), "
          f"runtime.threads {args.threads}")
    configs = [(f"{w} worker{'s' if w > 1 else ''}", w, {}) for w in counts]  # (label, workers, environment)
    best_s: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = write_bench_sweep(Path(tmp), args.runs, args.rounds, args.threads)
        for i in range(args.repeat):
            for k, (label, w, env) in enumerate(configs):
                wall_s = time_sweep(path, Path(tmp) / f"out-{k}-{i}", w, args.engine, env)
                if i == 0:
                    print(f"  {label}: torch threads of the runs {sorted(run_threads(Path(tmp) / f'out-{k}-{i}'))}")
                best_s[label] = min(wall_s, best_s.get(label, wall_s))
                print(f"  try {i + 1}: {label}: {wall_s:.1f} s (load average {os.getloadavg()[0]:.2f})")
    rates = {label: args.runs / s * 60 for label, s in best_s.items()}
    for label, _, _ in configs:
        print(f"{args.engine} engine, {label}: {args.runs} runs in {best_s[label]:.1f} s = "
              f"{rates[label]:.1f} runs/min ({best_s[label] / args.runs:.2f} s per run)")
    top, one = max(configs, key=lambda c: c[1])[0], min(configs, key=lambda c: c[1])[0]
    if top != one:
        print(f"speed-up {top} vs {one}: {rates[top] / rates[one]:.2f}x")
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) at the end")


if __name__ == "__main__":
    main()
