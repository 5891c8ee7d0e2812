"""Wall-time overhead of the co-simulation over the bare split-LoRA steps.

Runs the same split-LoRA steps twice on the real model: once bare (a plain loop
over the workload's steps, in the order the engine would call them) and once
inside ``cosim run`` (SimPy clock, radio, trace). Model loading and held-out
evaluation are excluded from both timings. Prints both wall times and their
ratio (target: at most 1.03).

    .venv/bin/python benchmarks/bench_overhead.py [--set key=value ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cosim.run import build_workload, run_scenario  # noqa: E402
from cosim.scenario import load_scenario  # noqa: E402

DEFAULTS = ["data.test_size=16", "training.rounds=2", "training.local_iterations=3"]


def bare(sc) -> float:
    """The same steps in a plain loop (round-robin over clients, as the engine's arrival order would be)."""
    wl = build_workload(sc)
    counts = wl.sample_counts()
    t0 = time.perf_counter()
    for _ in range(sc.training.rounds):
        for _ in range(sc.training.local_iterations):
            for k in range(sc.clients.count):
                wl.client_forward(k)
                wl.server_step(k)
                wl.client_backward(k)
        for k in range(sc.clients.count):
            wl.adapter_upload(k)
        wl.aggregate({k: float(c) for k, c in enumerate(counts)})
    return time.perf_counter() - t0


def in_cosim(sc) -> float:
    marks = {}

    def stage(text):
        marks[text] = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        run_scenario(sc, Path(tmp) / "run", on_stage=stage)
    return marks["evaluating after training"] - marks["training"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios" / "quickstart.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    sc = load_scenario(args.scenario, overrides=DEFAULTS + args.overrides)
    steps = sc.training.rounds * sc.training.local_iterations * sc.clients.count
    print(f"scenario {sc.name}: model {sc.model.name}, {steps} split steps "
          f"(batch {sc.training.batch_size} x {sc.training.seq_len} tokens), cut {sc.split.cut_layer}")
    t_bare = bare(sc)
    t_cosim = in_cosim(sc)
    print(f"bare steps      {t_bare:8.2f} s  ({t_bare / steps:.3f} s/step)")
    print(f"inside cosim    {t_cosim:8.2f} s  ({t_cosim / steps:.3f} s/step)")
    print(f"ratio           {t_cosim / t_bare:8.3f}  (target <= 1.03)")


if __name__ == "__main__":
    main()
