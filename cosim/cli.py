"""The ``cosim`` command line: ``run``, ``validate``, ``sweep``, ``profile``, ``optimize`` and ``report``.

User errors (a bad scenario, flag or folder) print one message per problem and
exit with status 2; internal bugs keep their traceback.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from .cli_parser import build_parser
from .errors import CosimError, RunStopped, ScenarioError
from .hugepages import numpy_without_huge_pages

EXIT_USER_ERROR = 2


def _load(args):
    from .scenario import load_scenario

    if args.seed is not None and args.seed < 0:
        raise ScenarioError([f"--seed: expected a value >= 0 (got {args.seed})"])
    return load_scenario(args.scenario, overrides=args.overrides, seed=args.seed)


def _run_target(args):
    """The scenario and output folder of ``cosim run``: from SCENARIO, or from the checkpoint of ``--resume DIR``."""
    from . import checkpoint
    from .scenario import scenario_from_dict

    if args.checkpoint_every is not None:
        if args.checkpoint_every < 0:
            raise ScenarioError([f"--checkpoint-every: expected a value >= 0 (got {args.checkpoint_every})"])
        args.overrides = [*args.overrides, f"checkpoint.every_rounds={args.checkpoint_every}"]
    if args.resume is None:
        if args.scenario is None:
            raise ScenarioError(["cosim run: expected a SCENARIO file, or --resume DIR"])
        sc = _load(args)
        return sc, args.out if args.out is not None else Path("results") / sc.name
    if args.scenario is not None or args.out is not None:
        raise ScenarioError(["--resume: takes the scenario and the folder from DIR (no SCENARIO, no --out)"])
    state = checkpoint.read(args.resume)
    if state is None:
        raise ScenarioError([f"--resume {args.resume}: no checkpoint there ({checkpoint.checkpoint_path(args.resume)})"])
    import yaml

    from .scenario.load import apply_overrides, parse_override

    raw = yaml.safe_load(state["scenario"])
    raw["checkpoint"] = {"every_rounds": int(state.get("every_rounds", 0))}
    raw, problems = apply_overrides(raw, [parse_override(o) for o in args.overrides])
    if problems:
        raise ScenarioError(problems)
    return scenario_from_dict(raw, source=str(checkpoint.checkpoint_path(args.resume))), args.resume


def _check_needs(sc, source) -> str:
    """The run's estimated needs (one line); a scenario whose estimate exceeds this machine's available
    memory is refused before anything runs or is written."""
    from .needs import available_memory_bytes, describe, estimate_needs, memory_problem

    needs = estimate_needs(sc)
    problem = memory_problem(sc, needs, available_memory_bytes())
    if problem is not None:
        raise ScenarioError([f"{source}: {problem}"])
    return describe(needs)


def _check_sweep_needs(source, runs) -> None:
    """Refuse a local sweep whose largest run cannot fit this machine's memory (each worker runs one at a time)."""
    from .needs import available_memory_bytes, estimate_needs, memory_problem
    from .sweep import describe

    available = available_memory_bytes()
    problems = []
    for r in runs:
        problem = memory_problem(r.scenario, estimate_needs(r.scenario), available)
        if problem is not None:
            problems.append(f"{source}: run {r.run_id} ({describe(r.params)}): {problem}")
    if problems:
        raise ScenarioError(problems)


def _cmd_validate(args) -> int:
    from .scenario import dump_scenario

    from .model_info import model_shape

    sc = _load(args)
    shape = model_shape(sc.model.name)
    needs = _check_needs(sc, args.scenario)
    sys.stdout.write(dump_scenario(sc))
    print(f"# {sc.model.name}: {shape.family}, {shape.n_layers} blocks, hidden size {shape.hidden_size} "
          f"(from {shape.source})", file=sys.stderr)
    print(f"# needs: {needs}", file=sys.stderr)
    print(f"# {args.scenario}: valid", file=sys.stderr)
    return 0


def _cmd_run(args) -> int:
    from .run import run_scenario
    from .progress import Progress

    sc, out = _run_target(args)
    _check_needs(sc, args.scenario if args.resume is None else args.resume)
    with Progress(total_rounds=sc.training.rounds, enabled=not args.quiet) as progress:
        summary = run_scenario(sc, out, on_round=progress.round_done, on_stage=progress.stage)
    from .analysis.report import accuracy_interval

    b, a = summary["before"], summary["after"]
    print(f"{sc.name}: {summary['rounds']} rounds, {summary['clients']} clients, "
          f"simulated {summary['total_time_s']:.3f} s (wall {summary['wall_time_s']:.1f} s)")
    statuses = summary["aggregation"]["statuses"]
    if set(statuses) - {"aggregated"}:
        print("client updates: " + ", ".join(f"{n} {status}" for status, n in sorted(statuses.items())))
    if a and a.get("source") == "not_modelled":
        print("held-out accuracy: not modelled (a replay under options its pilot curves know nothing of)")
    elif a:
        tail = f" ({accuracy_interval(a)})"
        if a.get("source") == "extrapolated":
            tail = (f" (n={a['n']}) -- extrapolated: a fitted curve beyond the pilot's {summary['pilot_rounds']} "
                    f"measured rounds")
        print(f"held-out accuracy {b['accuracy']:.3f} -> {a['accuracy']:.3f}, "
              f"loss {b['loss']:.4f} -> {a['loss']:.4f}{tail}")
    for note in summary["notes"]:
        if note.startswith("stopped early"):
            print(note)
    print(f"wrote {out}/events.parquet, rounds.parquet, clients.parquet, summary.json, scenario.yaml")
    print(f"next: cosim report {out}   (figures and an index.md in {out}/report)")
    return 0


def _cmd_sweep(args) -> int:
    from .sweep import check_engine_options, describe, expand_runs, is_done, read_sweep, run_sweep

    if args.workers < 1:
        raise CosimError(f"--workers: expected a value >= 1 (got {args.workers})")
    check_engine_options(args.engine, args.scheduler)
    sweep = read_sweep(args.sweep)
    runs = expand_runs(sweep)
    if args.engine == "local" and not args.dry_run:   # dask and slurm run on other machines
        _check_sweep_needs(args.sweep, runs)
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
                        about={"name": sweep.name, "sweep_file": str(args.sweep), "base": str(sweep.base_path)},
                        engine=args.engine, scheduler=args.scheduler, slurm=sweep.slurm)
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

    from .convergence import Target

    from .model_info import model_shape

    cuts, ranks = _int_list("--cuts", args.cuts, 1), _int_list("--ranks", args.ranks, 1)
    n_layers = model_shape(sc.model.name).n_layers           # from its configuration: before loading it
    if cuts is not None and not all(0 < c < n_layers for c in cuts):
        raise CosimError(f"--cuts: expected integers in 1..{n_layers - 1}, the cuts of {sc.model.name} "
                         f"({n_layers} blocks) (got {', '.join(str(c) for c in cuts if not 0 < c < n_layers)})")
    pilot_rounds = getattr(args, "pilot_rounds", 0)
    pilot_ranks = _int_list("--pilot-ranks", getattr(args, "pilot_ranks", None), 1)
    if pilot_rounds != 0 and pilot_rounds < 2:
        raise CosimError(f"--pilot-rounds: expected 0 (no pilot) or at least 2 rounds, to fit a curve "
                         f"(got {pilot_rounds})")
    if pilot_ranks is not None and not pilot_rounds:
        raise CosimError("--pilot-ranks: expected --pilot-rounds too")
    max_rounds = getattr(args, "max_rounds", None)
    if max_rounds is not None and max_rounds < 1:
        raise CosimError(f"--max-rounds: expected an integer >= 1 (got {max_rounds})")
    acc = getattr(args, "target_accuracy", None)
    if acc is not None and not 0 < acc <= 1:
        raise CosimError(f"--target-accuracy: expected a value in (0, 1] (got {acc})")
    tolerance = getattr(args, "target_tolerance", None)
    if tolerance is not None and not tolerance >= 0:
        raise CosimError(f"--target-tolerance: expected a value >= 0 (got {tolerance})")
    target = Target(metric="accuracy" if acc is not None else "loss",
                    value=acc if acc is not None else getattr(args, "target_loss", None), max_rounds=max_rounds,
                    tolerance=tolerance)
    bar = None

    def stage(text: str) -> None:
        nonlocal bar
        if bar is None and text.startswith("pilot"):    # the pilot runs: a bar over all their rounds, with an ETA
            from tqdm import tqdm

            from .profile import DEFAULT_RANKS

            n_ranks = len(pilot_ranks or ranks or DEFAULT_RANKS)
            bar = tqdm(total=n_ranks * pilot_rounds, unit="round", file=sys.stderr, dynamic_ncols=True,
                       bar_format="{desc} {bar} {n_fmt}/{total_fmt} pilot rounds [{elapsed}<{remaining}]")
        if bar is None:
            print(f"# {text}", file=sys.stderr)
        else:
            bar.set_description_str(text)

    def round_done(rank: int, r: int) -> None:
        bar.update(1)
        bar.set_description_str(f"pilot: rank {rank}: round {r}/{pilot_rounds} done")

    try:
        return profile_scenario(sc, cuts=cuts, ranks=ranks, pilot_rounds=pilot_rounds, pilot_ranks=pilot_ranks,
                                target=target, on_stage=stage, on_round=round_done)
    except CosimError as exc:
        if str(exc).startswith("cuts:"):
            raise CosimError(f"--{exc}") from exc
        raise
    finally:
        if bar is not None:
            bar.close()


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
    import tempfile

    from .optimize import check_policies, format_policies, format_rounds, optimize_scenario, rounds_from_profile, \
        to_json
    from .profile import profile_to_json, read_profile
    from .scenario.validate import ScenarioWarning, profile_problems

    _check_out_file(args.out)
    sc = _load(args)
    if args.profile is not None:
        try:
            profile = read_profile(args.profile)
        except CosimError as exc:
            lines = getattr(exc, "problems", None) or [str(exc)]
            raise ScenarioError([f"--profile: {line}" for line in lines]) from None
        problems, warned = profile_problems(sc, profile, f"--profile: {args.profile}", uses_pilot="decides")
        if problems:
            raise CosimError("\n".join(problems))
        for text in warned:
            warnings.warn(text, ScenarioWarning)
    else:
        profile = _profile(args, sc)
    costs = profile["costs"]
    rounds, about = rounds_from_profile(profile, costs["ranks"])
    result = {**optimize_scenario(sc, costs, knowledge=args.knowledge, rounds_to_target=rounds), **about}
    if args.check:
        with tempfile.TemporaryDirectory(prefix="cosim-optimize-") as tmp:
            path = args.profile
            if path is None:
                path = Path(tmp) / "profile.json"
                path.write_text(profile_to_json(profile))
            check_policies(sc, result, path, on_policy=lambda name: print(f"# replaying {name}", file=sys.stderr))
    sys.stdout.write(format_rounds(result) + format_policies(result))
    _write_out_file(args.out, to_json(result))
    return 0


def _cmd_report(args) -> int:
    from .analysis.report import write_report  # imports matplotlib when drawing: only for this command

    index = write_report(args.dir, args.out)
    print(f"wrote {index} and its figures")
    return 0


def error_lines(exc: CosimError) -> list[str]:
    """One line per problem of a user error; characters that would break a line (a control character in a
    key or a file name) are written as escapes, so every line still starts with ``cosim: error:``."""
    lines = exc.problems if isinstance(exc, ScenarioError) else str(exc).split("\n")
    lines = ["".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in line)
             for line in lines]
    return lines or [exc.__class__.__name__]


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Project warnings as one line each (``cosim: warning: ...``); others as Python shows them."""
    from .scenario.validate import ScenarioWarning

    if issubclass(category, ScenarioWarning):
        print(f"cosim: warning: {message}", file=file or sys.stderr)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


_python_showwarning = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = _show_warning
    numpy_without_huge_pages()
    parser = build_parser()
    args = parser.parse_args(argv)
    command = {"run": _cmd_run, "validate": _cmd_validate, "sweep": _cmd_sweep, "optimize": _cmd_optimize,
               "profile": _cmd_profile, "report": _cmd_report}[args.command]
    try:
        return command(args)
    except RunStopped as exc:
        print(f"cosim: run stopped: {exc}", file=sys.stderr)
        return exc.exit_status
    except CosimError as exc:
        for line in error_lines(exc):
            print(f"cosim: error: {line}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("cosim: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
