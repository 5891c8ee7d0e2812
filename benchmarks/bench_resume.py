"""What going on from a checkpoint costs, for an asynchronous run (rebuilt from its log).

An asynchronous run (FedAsync, FedBuff) is resumed by simulating again from time 0
on the log of what its workload answered (no model work), then doing the rest for
real (``cosim/worklog.py``). This runs the scenario three ways on the real
workload of ``--set`` (default: SmolLM2 from the quickstart, FedAsync):

1. uninterrupted;
2. stopped (in process) when server update ``--at`` (counted from 0) ends, before
   its checkpoint: the last checkpoint is that of update ``--at`` - 1;
3. resumed from that checkpoint to the end.

and prints each wall time (model loading and the held-out evaluations included,
as a user sees them), the read-back's share of the resume (the time until the
log ran out), and whether the resumed trace equals the uninterrupted one.

    .venv/bin/python benchmarks/bench_resume.py [--at N] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from cosim.run import run_scenario  # noqa: E402
from cosim.scenario import load_scenario  # noqa: E402

DEFAULTS = ["aggregation.mode=fedasync", "training.rounds=16", "checkpoint.every_rounds=1"]


class Stop(Exception):
    pass


def frames(out: Path) -> list[pd.DataFrame]:
    return [pd.read_parquet(out / f) for f in ("events.parquet", "rounds.parquet", "clients.parquet")]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--at", type=int, default=12, help="stop when this server update (from 0) ends")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    sc = load_scenario(ROOT / "scenarios" / "quickstart.yaml", overrides=[*DEFAULTS, *args.set])
    if sc.aggregation.mode not in ("fedasync", "fedbuff") or not 0 < args.at < sc.training.rounds:
        ap.error("an asynchronous scenario (aggregation.mode fedasync or fedbuff) and 0 < --at < training.rounds")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        run_scenario(sc, tmp / "whole")
        whole_s = time.perf_counter() - t0

        def stop(r, now):
            if r == args.at:
                raise Stop

        t0 = time.perf_counter()
        try:
            run_scenario(sc, tmp / "cut", on_round=stop)
        except Stop:
            pass
        cut_s = time.perf_counter() - t0

        read_back: dict[str, float] = {}

        def mark(r, now):  # the checkpoint's own server update: the last one read back from the log
            if r == args.at - 1:
                read_back["s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        notes = run_scenario(sc, tmp / "cut", on_round=mark)["notes"]
        resume_s = time.perf_counter() - t0
        same = all(a.equals(b) for a, b in zip(frames(tmp / "whole"), frames(tmp / "cut")))
        rows = len(pd.read_parquet(tmp / "whole" / "events.parquet"))
    n = sc.training.rounds
    print(f"{sc.model.name}, {sc.strategy.name} + {sc.aggregation.mode}, {sc.clients.count} clients, "
          f"{n} server updates, {rows} trace rows, checkpoint every {sc.checkpoint.every_rounds}")
    print(f"uninterrupted:            {whole_s:8.1f} s")
    print(f"stopped in update {args.at}:      {cut_s:8.1f} s")
    print(f"resumed to the end:       {resume_s:8.1f} s ({next(t for t in notes if 'checkpoint' in t)}; "
          f"model loaded and log read back in {read_back.get('s', float('nan')):.1f} s)")
    print(f"stopped + resumed / uninterrupted: {(cut_s + resume_s) / whole_s:.2f}")
    print(f"resumed trace equals the uninterrupted one: {same}")


if __name__ == "__main__":
    main()
