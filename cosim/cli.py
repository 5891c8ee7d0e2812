"""The ``cosim`` command line: ``cosim run`` and ``cosim validate``.

User errors (a bad scenario, flag or folder) print one message per problem and
exit with status 2; internal bugs keep their traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import CosimError, ScenarioError

EXIT_USER_ERROR = 2


def _scenario_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting by its dotted path, e.g. --set training.rounds=5 (repeatable)")
    p.add_argument("--seed", type=int, default=None, help="override the scenario seed")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cosim", description=(
        "Co-simulate federated split fine-tuning of a language model over a wireless network."))
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario and write its traces")
    _scenario_args(run)
    run.add_argument("--out", type=Path, default=None,
                     help="output folder (default: results/<scenario name>); replaced if it holds a previous run")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    val = sub.add_parser("validate", help="check a scenario and print it fully resolved")
    _scenario_args(val)
    return parser


def _load(args):
    from .scenario import load_scenario

    if args.seed is not None and args.seed < 0:
        raise ScenarioError([f"--seed: expected a value >= 0 (got {args.seed})"])
    return load_scenario(args.scenario, overrides=args.overrides, seed=args.seed)


def _cmd_validate(args) -> int:
    from .scenario import dump_scenario

    sc = _load(args)
    sys.stdout.write(dump_scenario(sc))
    print(f"# {args.scenario}: valid", file=sys.stderr)
    return 0


def _cmd_run(args) -> int:
    from .run import run_scenario
    from .progress import Progress

    sc = _load(args)
    out = args.out if args.out is not None else Path("results") / sc.name
    with Progress(total_rounds=sc.training.rounds, enabled=not args.quiet) as progress:
        summary = run_scenario(sc, out, on_round=progress.round_done, on_stage=progress.stage)
    b, a = summary["before"], summary["after"]
    print(f"{sc.name}: {summary['rounds']} rounds, {summary['clients']} clients, "
          f"simulated {summary['total_time_s']:.3f} s (wall {summary['wall_time_s']:.1f} s)")
    if a:
        print(f"held-out accuracy {b['accuracy']:.3f} -> {a['accuracy']:.3f}, "
              f"loss {b['loss']:.4f} -> {a['loss']:.4f} (n={a['n']})")
    print(f"wrote {out}/events.parquet, rounds.parquet, summary.json, scenario.yaml")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = {"run": _cmd_run, "validate": _cmd_validate}[args.command]
    try:
        return command(args)
    except CosimError as exc:
        for line in str(exc).splitlines() or [exc.__class__.__name__]:
            print(f"cosim: error: {line}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("cosim: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
