"""``write_report``: PNG figures and an ``index.md`` for a run folder or a sweep folder.

A run folder holds ``summary.json`` (``cosim run``), a sweep folder ``sweep.parquet``
(``cosim sweep``). The figures are written first and ``index.md`` last, through a
temporary file, so a report interrupted half-way has no index pointing at missing
figures.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path

import pandas as pd

from cosim.errors import CosimError

from .analysis import critical_path, wilson_interval
from .load import load_run
from .markdown import figure, table  # noqa: F401 - the report's sections

REPORT_DIR = "report"
EXPECTED = "a run folder with summary.json (`cosim run`) or a sweep folder with sweep.parquet (`cosim sweep`)"


def write_report(src_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write the figures and ``index.md`` of a run or sweep folder; return the path of ``index.md``.

    Parameters
    ----------
    src_dir : path
        A run folder (has ``summary.json``) or a sweep folder (has ``sweep.parquet``).
    out_dir : path, optional
        Where to write (created if missing); default ``<src_dir>/report``.

    Raises
    ------
    CosimError
        If ``src_dir`` is neither, or ``out_dir`` is an existing file.
    """
    src = Path(src_dir)
    if not src.exists():
        raise CosimError(f"{src}: no such folder (expected {EXPECTED})")
    if not src.is_dir():
        raise CosimError(f"{src}: not a folder (expected {EXPECTED})")
    if (src / "summary.json").is_file():
        build = _run_report
    elif (src / "sweep.parquet").is_file():
        from .sweep_report import sweep_report as build
    else:
        raise CosimError(f"{src}: not a cosim run or sweep folder (expected {EXPECTED})")
    out = Path(out_dir) if out_dir is not None else src / REPORT_DIR
    if out.exists() and not out.is_dir():
        raise CosimError(f"{out}: expected a folder for the report (got a file)")
    out.mkdir(parents=True, exist_ok=True)
    text = build(src, out)
    index = out / "index.md"
    fd, tmp = tempfile.mkstemp(prefix=".index.md.", suffix=".tmp", dir=out)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)            # mkstemp makes it private; a report is for reading
        os.replace(tmp, index)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return index


def _mb(n_bytes) -> str:
    return f"{n_bytes / 1e6:.2f} MB"


def _eval_text(summary: dict, key: str, fmt: str) -> str:
    b, a = summary.get("before") or {}, summary.get("after") or {}
    if key not in b and key not in a:
        return "not evaluated"
    bt = format(b[key], fmt) if key in b else "?"
    at = format(a[key], fmt) if key in a else "?"
    return f"{bt} -> {at}" + (f" ({accuracy_interval(a)})" if key == "accuracy" and "n" in a else "")


def accuracy_interval(evaluation: dict) -> str:
    """``n=128, 95% CI 0.644-0.797`` (Wilson) for an evaluation with ``accuracy`` and ``n``."""
    lo, hi = wilson_interval(evaluation["accuracy"], evaluation["n"])
    return f"n={evaluation['n']}, 95% CI {lo:.3f}-{hi:.3f}" if lo == lo else f"n={evaluation['n']}"


def _run_report(src: Path, out: Path) -> str:
    from . import plots

    try:
        events, rounds, clients, summary = load_run(src)
    except (OSError, ValueError) as exc:       # a damaged run folder: a missing or unreadable table
        raise CosimError(f"{src}: cannot read the run ({exc})") from exc
    total = float(summary.get("total_time_s", events["t_end_s"].max() if len(events) else 0.0))
    rows = [
        ("simulated training time", f"{total:.3f} s ({summary.get('rounds', len(rounds))} rounds, "
                                    f"{summary.get('clients', '?')} clients)"),
        ("held-out accuracy, before -> after", _eval_text(summary, "accuracy", ".3f")),
        ("held-out loss, before -> after", _eval_text(summary, "loss", ".4f")),
        ("final training loss", f"{summary.get('final_train_loss', math.nan):.4f}"),
        ("uplink / downlink traffic", f"{_mb(summary.get('uplink_bytes', 0))} / "
                                      f"{_mb(summary.get('downlink_bytes', 0))}"),
    ]
    if len(rounds):
        rows.append(("round duration, mean (min-max)", f"{rounds['duration_s'].mean():.3f} s "
                     f"({rounds['duration_s'].min():.3f}-{rounds['duration_s'].max():.3f} s)"))
    tsfa = plots.is_tsfa(rounds, summary)
    if tsfa:
        t = (summary.get("strategy") or {}).get("tsfa") or {}
        rows.append(("TSFA budget / mean round latency / final queue",
                     f"{t.get('latency_budget_s', math.nan):.4g} s / {rounds['duration_s'].mean():.4g} s / "
                     f"{t.get('final_queue_s', math.nan):.4g} s"))
    if "wall_time_s" in summary:
        rows.append(("wall-clock time of the run (machine-dependent)", f"{summary['wall_time_s']:.1f} s"))
    sections = [f"# Report: run `{summary.get('name', src.name)}`\n", f"Source: `{src}`\n", table(rows)]
    if events.empty:
        sections.append("The run recorded no events: no figures.\n")
        return "\n".join(sections)

    whole = events["round"].nunique() <= plots.WHOLE_RUN_ROUNDS
    sections.append("## Figures\n")
    sections.append(figure(
        out, "timeline.png", plots.timeline(events, rounds), "Timeline",
        "One row per client and the federated server, one bar per event coloured by kind, over simulated "
        f"time ({'the whole run' if whole else 'first and last round'}; dotted lines: round boundaries). "
        f"Events shorter than {100 * plots.THIN:g}% of the axis (milliseconds of compute beside seconds of "
        "transfer) also get a tick above their row; their durations are in the next figure."
        + (" Server steps and queueing are drawn on the row of the client they serve."
           if events["kind"].isin(["server_step", "server_queue"]).any() else "")))
    sections.append(figure(
        out, "event_durations.png", plots.event_durations(events), "Event durations",
        "Every event's duration on a log scale, one row per kind (black bar and label: the median): compute, "
        "transfers and waits side by side whatever their scale."))
    sections.append(figure(
        out, "loss_accuracy.png", plots.loss_accuracy(events, rounds, summary), "Loss and accuracy",
        "Training loss of every step and its round mean, held-out loss (top) and held-out accuracy with its "
        "95% Wilson interval (bottom) against simulated time; held-out points are drawn only where measured "
        "(`training.eval_every`), joined only when every round was; the point at 0 s is the model before "
        "training."))
    try:
        path = critical_path(events)
    except ValueError as exc:
        sections.append(f"### Critical path\n\nNot drawn: {exc}.\n")
    else:
        top = path.groupby(path["kind"].astype(str))["duration_s"].sum().sort_values()
        sections.append(figure(
            out, "critical_path.png", plots.critical_path_breakdown(path), "Critical path per phase",
            f"Seconds of the chain of events that sets the total time, per event kind; "
            f"`{top.index[-1]}` is the largest ({top.iloc[-1]:.3f} s of {top.sum():.3f} s)."))
    _, idle = plots.busy_rows(events)
    sections.append(figure(
        out, "busy_time.png", plots.busy_time(events), "Busy time per client",
        "Seconds each client (and the federated server) spends in each kind of event, summed over the run, "
        "stacked in the legend's order; parallel work counts once per client, so bars can exceed the total "
        "time." + (" Not drawn, busy too little to see: "
                   + ", ".join(f"{'the federated server' if c == -1 else f'client {c}'} ({s:.3g} s)"
                               for c, s in idle.items()) + "." if len(idle) else "")))
    if "energy_of" in events and (events["energy_of"] == "device").any():
        e = summary.get("energy", {})
        sections.append(figure(
            out, "energy_per_device.png", plots.energy_per_device(events), "Energy per device",
            "Joules each device spends over the run: its compute (FLOPs x J/FLOP, `energy.*`) and its "
            "transmissions ((transmit + circuit power) x air time, retransmissions included)"
            + (f"; devices {e['devices_j']:.3g} J in all, servers {e['servers_j']:.3g} J, base station "
               f"{e['base_station_j']:.3g} J." if e else ".")))
    n_clients = events.loc[events["client"] >= 0, "client"].nunique()
    strip = n_clients <= plots.STRIP_MAX_CLIENTS
    sections.append(figure(
        out, "round_delay.png", plots.round_delay(events, rounds), "Per-client round delay",
        ("One dot per client and round (colour: the round)" if strip else
         "Empirical CDF over clients and rounds") +
        " of the time from a round's start to the client's adapter upload finishing; the slowest client sets "
        "the round, and the dashed line is the mean round with its aggregation and broadcast."))
    if tsfa:
        sections.append(figure(
            out, "tsfa.png", plots.tsfa_rounds(rounds, clients, summary), "TSFA online stage",
            "Per round: the realised latency (bars), the latency predicted when the round was decided and the "
            "running mean against the long-term budget (top left); the virtual queue Q after the round (top "
            "right); each client's chosen sparsity (bottom left) and share of the cell's subchannels (bottom "
            "right). From rounds.parquet (`duration_s`, `predicted_s`, `virtual_queue`), clients.parquet "
            "(`sparsity`, `bandwidth_share`) and the summary's budget."))
    return "\n".join(sections)
