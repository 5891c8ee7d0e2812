"""Peak memory and wall time of the real workload as the number of clients grows.

One round of split federated LoRA on SmolLM2-135M (the quickstart: cut 3, rank 8
on q/k/v/o, batch 4 x 64 tokens), one local step per client, 256 subchannels,
every device at 1 TFLOP/s, for each number of clients in ``--clients`` (default
10, 30, 100). Each size runs as ``cosim run`` does, in a process of its own, so
that its peak resident memory (``ru_maxrss``) is its own. Prints, per size, the
peak RSS, the wall time of the whole run and of its training part (the steps,
what grows with the clients; model loading and evaluation are fixed costs), the
training seconds per step, and the memory each extra client costs.

    .venv/bin/python benchmarks/bench_memory.py [--clients 10,30,100] [--set key=value ...]

The 100-client run takes several minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETTINGS = ["training.rounds=1", "training.local_iterations=1", "compute.client_flops_per_s=1e12",
            "channel.n_subchannels=256", "data.test_size=16"]


def child(clients: int, overrides: list[str]) -> None:
    """One run of ``clients`` clients; prints a JSON line with its figures."""
    from cosim.run import run_scenario
    from cosim.scenario import load_scenario

    sc = load_scenario(ROOT / "scenarios" / "quickstart.yaml",
                       overrides=SETTINGS + [f"clients.count={clients}"] + overrides)
    marks = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        summary = run_scenario(sc, Path(tmp) / "run",
                               on_stage=lambda text: marks.__setitem__(text, time.perf_counter()))
    wall_s = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    steps = clients * sc.training.local_iterations * summary["rounds"]
    print(json.dumps({"clients": clients, "peak_rss_mb": peak_mb, "wall_s": wall_s, "steps": steps,
                      "train_s": marks["evaluating after training"] - marks["training"],
                      "threads": summary["runtime"]["threads"]}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="10,30,100", help="numbers of clients, one run each (default 10,30,100)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="more scenario overrides")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child, args.overrides)
        return
    sizes = [int(k) for k in args.clients.split(",")]
    print(f"SmolLM2-135M, cut 3, rank 8 on q/k/v/o, batch 4 x 64, one round of one step per client; "
          f"load average {os.getloadavg()[0]:.2f} (1 min)", flush=True)
    rows = []
    for k in sizes:
        cmd = [sys.executable, __file__, "--child", str(k)] + [f"--set={o}" for o in args.overrides]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            raise SystemExit(f"{k} clients failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{k:5d} clients: peak RSS {row['peak_rss_mb'] / 1024:6.2f} GB, wall {row['wall_s']:7.1f} s, "
              f"training {row['train_s']:7.1f} s = {row['train_s'] / row['steps']:.2f} s per step "
              f"(torch threads {row['threads']}, load average {os.getloadavg()[0]:.2f})", flush=True)
    for a, b in zip(rows, rows[1:]):
        per_client = (b["peak_rss_mb"] - a["peak_rss_mb"]) / (b["clients"] - a["clients"])
        print(f"memory per extra client, {a['clients']} -> {b['clients']}: {per_client:.1f} MB")
    if len(rows) > 2:
        first, last = rows[0], rows[-1]
        per_client = (last["peak_rss_mb"] - first["peak_rss_mb"]) / (last["clients"] - first["clients"])
        print(f"memory per extra client, {first['clients']} -> {last['clients']}: {per_client:.1f} MB "
              f"(target: {last['clients']} clients in at most 4 GB)")


if __name__ == "__main__":
    main()
