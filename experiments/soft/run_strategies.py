"""Dense FedLoRA vs SOFT vs top-k / random-k vs TSFA on IMDB with SmolLM2: accuracy, uplink bytes, latency.

Every run is a real `cosim run` (SmolLM2-135M, real IMDB reviews, the quickstart's
4 devices and 50-subchannel cell, Rayleigh fading) with the strategy changed:

    dense      strategy.name=fedlora
    soft-rho   strategy.name=soft, strategy.sparsity=rho (ortho_weight 1e-3)
    topk-rho   strategy.name=topk
    randk-rho  strategy.name=randomk
    tsfa-X     strategy.name=tsfa, tsfa.latency_budget_s = X x the dense run's mean round latency
               (same seed), the rank chosen offline from 4, 8, 16

Runs are written under results/experiments/soft/<name>-s<seed> and skipped when
already done, so the script resumes where it stopped. The table (mean over seeds,
with the spread) goes to experiments/soft/strategies.md and .csv.

    .venv/bin/python experiments/soft/run_strategies.py [--seeds 0 1] [--rounds 3]
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
SPARSITIES = (0.5, 0.75, 0.9)
BUDGETS = (0.85, 0.95)  # x the dense round latency (the dense broadcast keeps the least round near 0.8)
NOTES = ""  # what the numbers say, written after looking at them


def configs(dense_round_s: float | None):
    yield "dense", ["strategy.name=fedlora"]
    for rho in SPARSITIES:
        yield f"soft-{rho}", ["strategy.name=soft", f"strategy.sparsity={rho}"]
    yield "topk-0.9", ["strategy.name=topk", "strategy.sparsity=0.9"]
    yield "randk-0.9", ["strategy.name=randomk", "strategy.sparsity=0.9"]
    if dense_round_s is not None:
        for x in BUDGETS:
            yield f"tsfa-{x}", ["strategy.name=tsfa", f"tsfa.latency_budget_s={x * dense_round_s:.4f}",
                                "tsfa.rank_candidates=[4, 8, 16]"]


def run_one(name: str, overrides: list[str], seed: int, rounds: int, out_root: Path) -> dict:
    out = out_root / f"{name}-s{seed}"
    if (out / "summary.json").is_file():
        return json.loads((out / "summary.json").read_text())
    sc = load_scenario(ROOT / "scenarios" / "quickstart.yaml",
                       overrides=[*overrides, f"training.rounds={rounds}", f"name={name}"], seed=seed)
    t = time.perf_counter()
    summary = run_scenario(sc, out)
    print(f"{name} seed {seed}: accuracy {summary['before']['accuracy']:.3f} -> {summary['after']['accuracy']:.3f}, "
          f"uplink {summary['uplink_bytes'] / 1e6:.1f} MB, {summary['total_time_s']:.2f} simulated s "
          f"({time.perf_counter() - t:.0f} s wall)", flush=True)
    return summary


def row(name: str, seed: int, summary: dict, out_root: Path) -> dict:
    rounds = pd.read_parquet(out_root / f"{name}-s{seed}" / "rounds.parquet")
    st = summary.get("strategy", {})
    return {"config": name, "seed": seed, "accuracy": summary["after"]["accuracy"],
            "accuracy_before": summary["before"]["accuracy"], "eval_loss": summary["after"]["loss"],
            "uplink_MB": summary["uplink_bytes"] / 1e6, "total_s": summary["total_time_s"],
            "mean_round_s": float(rounds["duration_s"].mean()), "rank": st.get("rank"),
            "mean_sparsity": st.get("mean_sparsity"),
            "budget_s": (st.get("tsfa") or {}).get("latency_budget_s")}


def table(df: pd.DataFrame) -> str:
    order = list(dict.fromkeys(df["config"]))
    g = df.groupby("config", sort=False)
    lines = ["| config | rank | sparsity | accuracy (mean, min-max) | uplink MB | total simulated s | "
             "mean round s | budget s |", "|---|---|---|---|---|---|---|---|"]
    for name in order:
        d = g.get_group(name)
        budget = d["budget_s"].dropna()
        lines.append(
            f"| {name} | {int(d['rank'].iloc[0])} | {d['mean_sparsity'].mean():.2f} | "
            f"{d['accuracy'].mean():.3f} ({d['accuracy'].min():.3f}-{d['accuracy'].max():.3f}) | "
            f"{d['uplink_MB'].mean():.2f} | {d['total_s'].mean():.2f} | {d['mean_round_s'].mean():.2f} | "
            f"{budget.mean():.2f} |" if len(budget) else
            f"| {name} | {int(d['rank'].iloc[0])} | {d['mean_sparsity'].mean():.2f} | "
            f"{d['accuracy'].mean():.3f} ({d['accuracy'].min():.3f}-{d['accuracy'].max():.3f}) | "
            f"{d['uplink_MB'].mean():.2f} | {d['total_s'].mean():.2f} | {d['mean_round_s'].mean():.2f} | - |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "results" / "experiments" / "soft")
    p.add_argument("--table-only", action="store_true", help="tabulate the finished runs; run nothing")
    args = p.parse_args()
    rows = []
    for seed in args.seeds:
        if args.table_only and not (args.out / f"dense-s{seed}" / "summary.json").is_file():
            continue
        run_one("dense", ["strategy.name=fedlora"], seed, args.rounds, args.out)
        dense_round = float(pd.read_parquet(args.out / f"dense-s{seed}" / "rounds.parquet")["duration_s"].mean())
        for name, overrides in configs(dense_round):
            if args.table_only and not (args.out / f"{name}-s{seed}" / "summary.json").is_file():
                continue
            summary = run_one(name, overrides, seed, args.rounds, args.out)
            rows.append(row(name, seed, summary, args.out))
        write_table(pd.DataFrame(rows), args)


def write_table(df: pd.DataFrame, args) -> None:
    df.to_csv(HERE / "strategies.csv", index=False)
    text = table(df)
    seeds = sorted(df["seed"].unique().tolist())
    (HERE / "strategies.md").write_text(
        "# Dense FedLoRA, SOFT, top-k, random-k and TSFA on IMDB with SmolLM2-135M\n\n"
        f"Generated by `experiments/soft/run_strategies.py --seeds {' '.join(map(str, args.seeds))} "
        f"--rounds {args.rounds}`: the quickstart scenario (4 devices, 50 x 180 kHz, Rayleigh fading, "
        f"q/k/v/o LoRA rank 8, 6 local steps of batch 4 x 64 tokens, {args.rounds} rounds), "
        f"held-out accuracy on 128 IMDB reviews; means over seeds {seeds} (min-max in brackets).\n\n"
        + text + "\n" + NOTES)
    print(text, flush=True)


if __name__ == "__main__":
    main()
