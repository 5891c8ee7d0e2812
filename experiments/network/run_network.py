"""When the network decides what is learned: SmolLM2-135M on IMDB under deadlines, dropouts, asynchrony, SFL-V2, SL.

Every run is a real `cosim run` of the quickstart scenario (SmolLM2-135M, real IMDB
reviews, 4 heterogeneous devices in a 500 m cell, 50 x 180 kHz with Rayleigh
fading, LoRA rank 8 on q/k/v/o, 6 local steps of batch 4 x 64 tokens), held-out
accuracy on 128 reviews after every round, with one thing changed:

    barrier        SFL-V1, every round waits for every client (the quickstart)
    deadline-5.3   aggregation.mode=deadline, 5.3 s: the slowest device is usually cut
    deadline-4.0   4.0 s: the two slowest are cut
    dropout-10     availability on/off, online 20 s / offline 2.2 s on average (about 10% offline)
    dropout-30     online 10 s / offline 4.3 s (about 30% offline)
    fedasync       FedAsync (alpha 0.6, a 0.5), 4 x ROUNDS server updates (one client update each)
    fedbuff        FedBuff (M = 2), 2 x ROUNDS server updates (two client updates each)
    sfl-v2         one shared server-side adapter, updated in arrival order
    sl             vanilla split learning: the clients take turns, ROUNDS passes

Every config does the same number of client updates (4 x ROUNDS) unless the
network cuts some. Runs go to results/experiments/network/<config>-s<seed> and
are skipped when done, so the script resumes; the table (mean over seeds,
min-max in brackets) goes to experiments/network/network.md and .csv.

    .venv/bin/python experiments/network/run_network.py [--seeds 0 1] [--rounds 4] [--target 0.7]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from cosim.run import run_scenario
from cosim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def configs(rounds: int) -> dict[str, list[str]]:
    every = ["training.eval_every=1"]
    return {
        "barrier": every,
        "deadline-5.3": [*every, "aggregation.mode=deadline", "aggregation.deadline_s=5.3"],
        "deadline-4.0": [*every, "aggregation.mode=deadline", "aggregation.deadline_s=4.0"],
        "dropout-10": [*every, "availability.model=on_off", "availability.mean_on_s=20",
                       "availability.mean_off_s=2.2"],
        "dropout-30": [*every, "availability.model=on_off", "availability.mean_on_s=10",
                       "availability.mean_off_s=4.3"],
        "fedasync": ["aggregation.mode=fedasync", f"training.rounds={4 * rounds}", "training.eval_every=4"],
        "fedbuff": ["aggregation.mode=fedbuff", "aggregation.buffer_size=2", f"training.rounds={2 * rounds}",
                    "training.eval_every=2"],
        "sfl-v2": [*every, "strategy.name=sfl_v2"],
        "sl": [*every, "strategy.name=sl"],
    }


def run_one(name: str, overrides: list[str], seed: int, rounds: int, out_root: Path) -> Path:
    out = out_root / f"{name}-s{seed}"
    if not (out / "summary.json").is_file():
        sc = load_scenario(ROOT / "scenarios" / "quickstart.yaml",
                           overrides=[f"training.rounds={rounds}", *overrides, f"name={name}"], seed=seed)
        t = time.perf_counter()
        s = run_scenario(sc, out)
        print(f"{name} seed {seed}: accuracy {s['before']['accuracy']:.3f} -> {s['after']['accuracy']:.3f}, "
              f"{s['total_time_s']:.2f} simulated s, updates {s['aggregation']['statuses']} "
              f"({time.perf_counter() - t:.0f} s wall)", flush=True)
    return out


def row(name: str, seed: int, out: Path, target: float) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    rounds = pd.read_parquet(out / "rounds.parquet")
    clients = pd.read_parquet(out / "clients.parquet")
    evaluated = rounds.dropna(subset=["accuracy"])
    reached = evaluated[evaluated["accuracy"] >= target]
    return {"config": name, "seed": seed, "accuracy": summary["after"]["accuracy"],
            "accuracy_before": summary["before"]["accuracy"], "total_s": summary["total_time_s"],
            "time_to_target_s": float(reached["t_end_s"].iloc[0]) if len(reached) else float("nan"),
            "updates_in": int((clients["status"] == "aggregated").sum()), "updates_lost": int(
                (clients["status"] != "aggregated").sum()),
            "mean_staleness": float(clients["staleness"].mean()) if clients["staleness"].notna().any() else 0.0}


def table(df: pd.DataFrame, target: float) -> str:
    lines = [f"| config | accuracy (mean, min-max) | simulated s to accuracy >= {target} (runs that reach it) | "
             "total simulated s | client updates in / lost | mean staleness |", "|---|---|---|---|---|---|"]
    for name, d in df.groupby("config", sort=False):
        hit = d["time_to_target_s"].dropna()
        to_target = f"{hit.mean():.1f} ({len(hit)}/{len(d)})" if len(hit) else f"never (0/{len(d)})"
        lines.append(f"| {name} | {d['accuracy'].mean():.3f} ({d['accuracy'].min():.3f}-{d['accuracy'].max():.3f}) | "
                     f"{to_target} | {d['total_s'].mean():.1f} | {d['updates_in'].mean():.1f} / "
                     f"{d['updates_lost'].mean():.1f} | {d['mean_staleness'].mean():.2f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--target", type=float, default=0.7, help="held-out accuracy to reach")
    p.add_argument("--only", nargs="*", default=None, help="run only these configs")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "experiments" / "network")
    args = p.parse_args()
    rows = []
    for seed in args.seeds:
        for name, overrides in configs(args.rounds).items():
            if args.only and name not in args.only:
                continue
            rows.append(row(name, seed, run_one(name, overrides, seed, args.rounds, args.out), args.target))
    df = pd.DataFrame(rows)
    df = df.sort_values("config", key=lambda c: c.map(list(configs(args.rounds)).index), kind="stable")
    df.to_csv(HERE / "network.csv", index=False)
    text = table(df, args.target)
    notes = (HERE / "notes.md").read_text() if (HERE / "notes.md").is_file() else ""
    (HERE / "network.md").write_text(
        "# When the network decides what is learned (SmolLM2-135M, IMDB)\n\n"
        f"Generated by `experiments/network/run_network.py --seeds {' '.join(map(str, args.seeds))} "
        f"--rounds {args.rounds} --target {args.target}` (see its docstring for each config): the quickstart "
        f"scenario, held-out accuracy on 128 IMDB reviews; means over seeds {sorted(set(df['seed']))}.\n\n"
        + text + "\n\n" + notes)
    print(text, flush=True)


if __name__ == "__main__":
    main()
