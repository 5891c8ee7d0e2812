"""The ``cosim`` command line's flags: one subcommand each for run, validate, sweep, profile, optimize, report."""

from __future__ import annotations

import argparse
from pathlib import Path


def _scenario_args(p: argparse.ArgumentParser, optional: bool = False) -> None:
    p.add_argument("scenario", nargs="?" if optional else None, help="scenario YAML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting by its dotted path, e.g. --set training.rounds=5 (repeatable)")
    p.add_argument("--seed", type=int, default=None, help="override the scenario seed")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cosim", description=(
        "Co-simulate federated split fine-tuning of a language model over a wireless network."))
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario and write its traces")
    _scenario_args(run, optional=True)
    run.add_argument("--out", type=Path, default=None,
                     help="output folder (default: results/<scenario name>); replaced if it holds a previous run; "
                          "if it holds a checkpoint of the same scenario, the run goes on from it")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--checkpoint-every", type=int, default=None, metavar="N",
                     help="write a checkpoint into OUT/checkpoint/ every N rounds (checkpoint.every_rounds)")
    run.add_argument("--resume", type=Path, default=None, metavar="DIR",
                     help="go on from the checkpoint in DIR (its own scenario; no SCENARIO argument)")
    val = sub.add_parser("validate", help="check a scenario and print it fully resolved")
    _scenario_args(val)
    swp = sub.add_parser("sweep", help="run every run of a sweep file that is not done yet (resumable)")
    swp.add_argument("sweep", help="sweep YAML file (base scenario + grid/zip/cases/seeds)")
    swp.add_argument("--out", type=Path, default=None, help="sweep folder (default: results/<sweep name>)")
    swp.add_argument("--workers", type=int, default=1, help="runs in parallel, one process each (default 1)")
    swp.add_argument("--engine", default="local", choices=["local", "dask", "slurm"],
                     help="where the runs execute: a local process pool (default), a Dask cluster, Slurm job "
                          "arrays (the last two need: pip install 'cosim[cluster]')")
    swp.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="--engine dask: a running Dask scheduler, e.g. tcp://host:8786 "
                          "(default: start a LocalCluster of --workers processes)")
    swp.add_argument("--dry-run", action="store_true", help="list the runs and whether each is done; run nothing")
    swp.add_argument("--quiet", action="store_true", help="no progress bar")
    prof = sub.add_parser("profile", help="measure FLOPs and bytes per candidate cut and LoRA rank (the cost table)")
    _scenario_args(prof)
    prof.add_argument("--cuts", default=None, metavar="C1,C2,...",
                      help="candidate cuts (default: every cut 1..L-1 of the model)")
    prof.add_argument("--ranks", default=None, metavar="R1,R2,...", help="candidate LoRA ranks (default: 4,8,16,32,64)")
    prof.add_argument("--out", type=Path, default=None, help="also write the table and its settings to this JSON file")
    prof.add_argument("--pilot-rounds", type=int, default=0, metavar="R",
                      help="also run R rounds of real training per pilot rank and store the held-out loss and "
                           "accuracy curves (rounds(rank) for the optimizer; default 0: none)")
    prof.add_argument("--pilot-ranks", default=None, metavar="R1,R2,...", help="ranks of the pilot runs "
                      "(default: every candidate rank)")
    target = prof.add_mutually_exclusive_group()
    target.add_argument("--target-loss", type=float, default=None, help="rounds(rank) counts the rounds to "
                        "this held-out loss (default: the loss the best pilot rank reaches at its last round)")
    target.add_argument("--target-accuracy", type=float, default=None,
                        help="count the rounds to this held-out accuracy instead")
    prof.add_argument("--target-tolerance", type=float, default=None, metavar="TOL",
                      help="how close to the target counts as reached, in its units (default: none for a given "
                           "target; for the default loss target 1%% of the best rank's drop over the pilot, for "
                           "an accuracy target one binomial standard error)")
    prof.add_argument("--max-rounds", type=int, default=None, help="cap on rounds(rank) for a rank whose fitted "
                      "curve does not reach the target (default: 10 x the pilot rounds)")
    opt = sub.add_parser("optimize", help="every allocation policy's decisions and predicted delay, side by side")
    _scenario_args(opt)
    opt.add_argument("--profile", type=Path, default=None,
                     help="cost table from `cosim profile --out` (default: measure it now)")
    opt.add_argument("--cuts", default=None, metavar="C1,C2,...", help="candidate cuts when measuring now")
    opt.add_argument("--ranks", default=None, metavar="R1,R2,...", help="candidate ranks when measuring now")
    opt.add_argument("--knowledge", default=None, choices=["average", "current"],
                     help="gains the policies see: large-scale only, or the first fading block (default: the "
                          "scenario's allocation.knowledge, as `cosim run` decides)")
    opt.add_argument("--check", action="store_true",
                     help="also replay each policy on the scenario (replay workload, the scenario's fading) and print "
                          "the realised delay beside the predicted one")
    opt.add_argument("--out", type=Path, default=None, help="also write the decisions to this JSON file")
    rep = sub.add_parser("report", help="write PNG figures and an index.md for a run or sweep folder")
    rep.add_argument("dir", type=Path, help="a run folder (summary.json) or a sweep folder (sweep.parquet)")
    rep.add_argument("--out", type=Path, default=None, help="report folder (default: DIR/report)")
    return parser
