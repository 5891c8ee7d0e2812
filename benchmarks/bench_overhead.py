"""Wall-time overhead of the co-simulation over the bare split-LoRA steps.

Runs the same split-LoRA steps twice on the real model: once inside ``cosim run``
(SimPy clock, radio, trace), recording every call the engine makes to the
workload -- a step announced (``client_forward(k)`` ... returns a
:class:`cosim.workload.Step` with its FLOPs) and, when its event ends, that
step's ``run()`` -- and once bare: a plain loop replaying exactly those calls,
in that order, on a fresh workload. Model loading and held-out evaluation are
excluded from both timings. The two are run alternately ``--repeat`` times and
the fastest of each is kept, so a busy machine disturbs both alike. Prints both
wall times and their ratio (target: at most 1.03).

    .venv/bin/python benchmarks/bench_overhead.py [--repeat N] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cosim.devices import client_flops_per_s  # noqa: E402
from cosim.radio import build_radio  # noqa: E402
from cosim.run import run_scenario  # noqa: E402
from cosim.scenario import load_scenario  # noqa: E402
from cosim.strategies import get_strategy  # noqa: E402
from cosim.workload import Step  # noqa: E402

DEFAULTS = ["data.test_size=16", "training.rounds=2", "training.local_iterations=3"]
CALLS = ("client_forward", "server_step", "client_backward", "adapter_upload", "aggregate", "sample_counts",
         "cancel", "begin", "mix", "buffer", "apply_buffer", "local_step", "upload")


def build_workload(sc):
    """The scenario's workload, as ``cosim run`` builds it."""
    return get_strategy(sc.strategy.name).build_workload(sc, radios=build_radio(sc),
                                                         client_flops_per_s=client_flops_per_s(sc),
                                                         stage=lambda text: None)


class CallLog:
    """Passes every call through to the workload and remembers the training calls, in order.

    A returned :class:`Step` is handed back wrapped: its ``run()``, which the engine calls
    when the step's event ends, is logged as ``("run", i)``, ``i`` the call that announced it.
    """

    def __init__(self, workload):
        self._workload = workload
        self.calls: list[tuple[str, tuple]] = []

    def __getattr__(self, name):
        attr = getattr(self._workload, name)
        if name not in CALLS:
            return attr

        def call(*args):
            self.calls.append((name, args))
            out = attr(*args)
            if isinstance(out, Step):
                index, run = len(self.calls) - 1, out.run

                def logged_run():
                    self.calls.append(("run", (index,)))
                    return run()

                return Step(flops=out.flops, run=logged_run)
            return out

        return call


def in_cosim(sc) -> tuple[float, list]:
    marks = {}
    log = CallLog(build_workload(sc))
    with tempfile.TemporaryDirectory() as tmp:
        run_scenario(sc, Path(tmp) / "run", workload=log, on_stage=lambda text: marks.__setitem__(text, time.perf_counter()))
    return marks["evaluating after training"] - marks["training"], log.calls


def bare(sc, calls) -> float:
    """The same calls in the same order, each announced step run where the engine ran it."""
    wl = build_workload(sc)
    steps = {}
    t0 = time.perf_counter()
    for i, (name, args) in enumerate(calls):
        if name == "run":
            steps.pop(args[0]).run()
        else:
            out = getattr(wl, name)(*args)
            if isinstance(out, Step):
                steps[i] = out
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios" / "quickstart.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--repeat", type=int, default=2, help="alternate cosim and bare this many times")
    args = parser.parse_args()
    sc = load_scenario(args.scenario, overrides=DEFAULTS + args.overrides)
    steps = sc.training.rounds * sc.training.local_iterations * sc.clients.count
    print(f"scenario {sc.name}: model {sc.model.name}, {steps} split steps "
          f"(batch {sc.training.batch_size} x {sc.training.seq_len} tokens), cut {sc.split.cut_layer}")
    bares, cosims = [], []
    for i in range(args.repeat):
        t_cosim, calls = in_cosim(sc)
        cosims.append(t_cosim)
        bares.append(bare(sc, calls))
        print(f"  repeat {i + 1}: cosim {cosims[-1]:.2f} s, bare {bares[-1]:.2f} s ({len(calls)} calls)", flush=True)
    t_bare, t_cosim = min(bares), min(cosims)
    pairs = sorted(c / b for c, b in zip(cosims, bares))
    print(f"bare steps      {t_bare:8.2f} s  ({t_bare / steps:.3f} s/step, fastest)")
    print(f"inside cosim    {t_cosim:8.2f} s  ({t_cosim / steps:.3f} s/step, fastest)")
    print(f"ratio           {t_cosim / t_bare:8.3f}  fastest/fastest (target <= 1.03)")
    print(f"ratio per pair  {', '.join(f'{r:.3f}' for r in pairs)}  (each repeat: cosim / bare; the spread is the machine's noise)")


if __name__ == "__main__":
    main()
