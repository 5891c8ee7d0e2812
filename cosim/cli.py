"""The ``cosim`` command line: ``run``, ``validate``, ``profile`` and ``sweep``.

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
    swp = sub.add_parser("sweep", help="run every run of a sweep file that is not done yet (resumable)")
    swp.add_argument("sweep", help="sweep YAML file (base scenario + grid/zip/cases/seeds)")
    swp.add_argument("--out", type=Path, default=None, help="sweep folder (default: results/<sweep name>)")
    swp.add_argument("--workers", type=int, default=1, help="runs in parallel, one process each (default 1)")
    swp.add_argument("--dry-run", action="store_true", help="list the runs and whether each is done; run nothing")
    swp.add_argument("--quiet", action="store_true", help="no progress bar")
    prof = sub.add_parser("profile", help="measure FLOPs and bytes per candidate cut and LoRA rank (the cost table)")
    _scenario_args(prof)
    prof.add_argument("--cuts", default=None, metavar="C1,C2,...",
                      help="candidate cuts (default: every cut 1..L-1 of the model)")
    prof.add_argument("--ranks", default=None, metavar="R1,R2,...", help="candidate LoRA ranks (default: 4,8,16,32,64)")
    prof.add_argument("--out", type=Path, default=None, help="also write the table and its settings to this JSON file")
    opt = sub.add_parser("optimize", help="every allocation policy's decisions and predicted delay, side by side")
    _scenario_args(opt)
    opt.add_argument("--profile", type=Path, default=None,
                     help="cost table from `cosim profile --out` (default: measure it now)")
    opt.add_argument("--cuts", default=None, metavar="C1,C2,...", help="candidate cuts when measuring now")
    opt.add_argument("--ranks", default=None, metavar="R1,R2,...", help="candidate ranks when measuring now")
    opt.add_argument("--knowledge", default="average", choices=["average", "current"],
                     help="gains the optimizer sees: large-scale only, or the first fading block")
    opt.add_argument("--out", type=Path, default=None, help="also write the decisions to this JSON file")
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


def _cmd_sweep(args) -> int:
    from .sweep import describe, expand_runs, is_done, read_sweep, run_sweep

    if args.workers < 1:
        raise CosimError(f"--workers: expected a value >= 1 (got {args.workers})")
    sweep = read_sweep(args.sweep)
    runs = expand_runs(sweep)
    out = args.out if args.out is not None else Path("results") / sweep.name
    if args.dry_run:
        n_done = 0
        for r in runs:
            done = is_done(out, r.run_id)
            n_done += done
            print(f"{r.run_id}  {'done' if done else 'to run':6}  {describe(r.params)}")
        print(f"{sweep.name}: {len(runs)} runs, {n_done} done, {len(runs) - n_done} to run -> {out}")
        return 0
    try:
        res = run_sweep(runs, out, workers=args.workers, progress=not args.quiet,
                        about={"name": sweep.name, "sweep_file": str(args.sweep), "base": str(sweep.base_path)})
    except KeyboardInterrupt:
        print(f"cosim: interrupted; finished runs are kept in {out}; run the same command again to resume",
              file=sys.stderr)
        return 130
    print(f"{sweep.name}: {res.total} runs: {res.skipped} already done, {res.done} ran, {res.failed} failed")
    print(f"wrote {out}/sweep.parquet")
    return 1 if res.failed else 0


def _int_list(flag: str, text: str | None, lower: int) -> list[int] | None:
    if text is None:
        return None
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < lower or len(set(values)) != len(values):
        raise CosimError(f"{flag}: expected distinct comma-separated integers >= {lower} (got {text!r})")
    return values


def _profile(args, sc) -> dict:
    """Measure the cost table for ``--cuts`` / ``--ranks`` (a bad cut is named as the flag)."""
    from .profile import profile_scenario

    cuts, ranks = _int_list("--cuts", args.cuts, 1), _int_list("--ranks", args.ranks, 1)
    try:
        return profile_scenario(sc, cuts=cuts, ranks=ranks)
    except CosimError as exc:
        if str(exc).startswith("cuts:"):
            raise CosimError(f"--{exc}") from exc
        raise


def _check_out_file(path: Path | None) -> None:
    if path is not None and path.is_dir():
        raise CosimError(f"--out: expected a file name (got the folder {path})")


def _write_out_file(path: Path | None, text: str) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")


def _cmd_profile(args) -> int:
    from .profile import format_profile, profile_to_json

    _check_out_file(args.out)
    result = _profile(args, _load(args))
    sys.stdout.write(format_profile(result))
    _write_out_file(args.out, profile_to_json(result))
    return 0


def _cmd_optimize(args) -> int:
    from .optimize import format_policies, optimize_scenario, to_json
    from .profile import read_profile

    _check_out_file(args.out)
    sc = _load(args)
    costs = read_profile(args.profile)["costs"] if args.profile is not None else _profile(args, sc)["costs"]
    result = optimize_scenario(sc, costs, knowledge=args.knowledge)
    sys.stdout.write(format_policies(result))
    _write_out_file(args.out, to_json(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = {"run": _cmd_run, "validate": _cmd_validate, "sweep": _cmd_sweep, "optimize": _cmd_optimize,
               "profile": _cmd_profile}[args.command]
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
