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

from .analysis import critical_path
from .load import load_run

REPORT_DIR = "report"
MAX_LINES = 6   # lines per sweep panel; more combinations are pooled into one
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
        build = _sweep_report
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


def _figure(out: Path, name: str, fig, title: str, what: str) -> str:
    """Save one figure and return its markdown section."""
    from .plots import save

    save(fig, out / name)
    return f"### {title}\n\n{what}\n\n![{title}]({name})\n"


def _table(rows: list[tuple[str, str]], head: tuple[str, str] = ("quantity", "value")) -> str:
    lines = [f"| {head[0]} | {head[1]} |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)]
    return "\n".join(lines) + "\n"


def _mb(n_bytes) -> str:
    return f"{n_bytes / 1e6:.2f} MB"


def _eval_text(summary: dict, key: str, fmt: str) -> str:
    b, a = summary.get("before") or {}, summary.get("after") or {}
    if key not in b and key not in a:
        return "not evaluated"
    bt = format(b[key], fmt) if key in b else "?"
    at = format(a[key], fmt) if key in a else "?"
    return f"{bt} -> {at}" + (f" (n={a['n']})" if "n" in a and key == "accuracy" else "")


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
    if "wall_time_s" in summary:
        rows.append(("wall-clock time of the run", f"{summary['wall_time_s']:.1f} s"))
    sections = [f"# Report: run `{summary.get('name', src.name)}`\n", f"Source: `{src}`\n", _table(rows)]
    if events.empty:
        sections.append("The run recorded no events: no figures.\n")
        return "\n".join(sections)

    whole = events["round"].nunique() <= plots.WHOLE_RUN_ROUNDS
    sections.append("## Figures\n")
    sections.append(_figure(
        out, "timeline.png", plots.timeline(events, rounds), "Timeline",
        "One row per client and the federated server, one bar per event coloured by kind, over simulated "
        f"time ({'the whole run' if whole else 'first and last round'}; dotted lines: round boundaries)."
        + (" Server steps and queueing are drawn on the row of the client they serve."
           if events["kind"].isin(["server_step", "server_queue"]).any() else "")))
    sections.append(_figure(
        out, "loss_accuracy.png", plots.loss_accuracy(events, rounds, summary), "Loss and accuracy",
        "Training loss of every step and its round mean, held-out loss (top) and held-out accuracy "
        "(bottom) against simulated time; the point at 0 s is the model before training."))
    try:
        path = critical_path(events)
    except ValueError as exc:
        sections.append(f"### Critical path\n\nNot drawn: {exc}.\n")
    else:
        top = path.groupby(path["kind"].astype(str))["duration_s"].sum().sort_values()
        sections.append(_figure(
            out, "critical_path.png", plots.critical_path_breakdown(path), "Critical path per phase",
            f"Seconds of the chain of events that sets the total time, per event kind; "
            f"`{top.index[-1]}` is the largest ({top.iloc[-1]:.3f} s of {top.sum():.3f} s)."))
    sections.append(_figure(
        out, "busy_time.png", plots.busy_time(events), "Busy time per client",
        "Seconds each client (and the federated server) spends in each kind of event, summed over the run; "
        "parallel work counts once per client, so bars can exceed the total time."))
    if "energy_of" in events and (events["energy_of"] == "device").any():
        e = summary.get("energy", {})
        sections.append(_figure(
            out, "energy_per_device.png", plots.energy_per_device(events), "Energy per device",
            "Joules each device spends over the run: its compute (FLOPs x J/FLOP, `energy.*`) and its "
            "transmissions ((transmit + circuit power) x air time, retransmissions included)"
            + (f"; devices {e['devices_j']:.3g} J in all, servers {e['servers_j']:.3g} J, base station "
               f"{e['base_station_j']:.3g} J." if e else ".")))
    sections.append(_figure(
        out, "round_delay_cdf.png", plots.round_delay_cdf(events, rounds), "Per-client round delay",
        "Empirical CDF over clients and rounds of the time from a round's start to the client's adapter "
        "upload finishing (dots: each client's rounds); the slowest client sets the round."))
    return "\n".join(sections)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _sweep_report(src: Path, out: Path) -> str:
    from cosim.sweep.index import METRICS

    from . import plots

    meta_path = src / "sweep.json"
    try:
        index = pd.read_parquet(src / "sweep.parquet")
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    except (OSError, ValueError) as exc:
        raise CosimError(f"{src}: cannot read the sweep index ({exc})") from exc
    params = [p for p in meta.get("params", []) if p in index.columns]
    status = index["status"].fillna("pending").value_counts()
    done = index[index["status"] == "done"]
    rows = [("runs", str(len(index))), *((f"runs {s}", str(n)) for s, n in status.items()),
            ("varied parameters", _names(params) or "none")]
    name = meta.get("name", src.name)
    sections = [f"# Report: sweep `{name}`\n", f"Source: `{src}`\n", _table(rows)]
    metrics = [m for m in METRICS if m in done.columns and done[m].notna().any()]
    if done.empty or not metrics:
        sections.append("No finished run yet: no figures.\n")
        return "\n".join(sections)

    groups = [p for p in params if p != "seed"]
    if groups and done.groupby(groups, sort=False, dropna=False).ngroups <= 20:
        means = done.groupby(groups, sort=False, dropna=False).agg(
            runs=("run_id", "size"), total_time_s=("total_time_s", "mean"),
            after_accuracy=("after.accuracy", "mean"), uplink_bytes=("uplink_bytes", "mean")).reset_index()
        head = [*groups, "runs", "total time (s)", "accuracy after", "uplink (MB)"]
        body = [[*(plots.short_label(str(v), width=48) for v in row[:len(groups)]), str(row[len(groups)]),
                 *(f"{v:.4g}" for v in (row[-3], row[-2], row[-1] / 1e6))]
                for row in means.itertuples(index=False)]
        sections.append("Mean over the runs (seeds) of each combination:\n")
        sections.append(_grid(head, body))
    xs = _axes(done, groups) or params
    if not xs:
        sections.append("Nothing varies in this sweep: no figures.\n")
        return "\n".join(sections)
    sections.append("## Figures\n")
    sections.append(f"Metrics plotted: {', '.join(f'`{m}`' for m in metrics)}\n")
    for x in xs:
        hue = [h for h in xs if h != x and not _determines(done, x, h)]
        along = [q for q in groups if q not in xs and _determines(done, x, q) and _determines(done, q, x)]
        if hue and done.groupby(hue, sort=False, dropna=False).ngroups > MAX_LINES:
            hue = []
        fig = plots.sweep_param(done, x, metrics, hue=hue, max_lines=MAX_LINES)
        what = [f"Each headline metric against `{x}`"
                + (f", which varies together with {_names(along)}" if along else "") + "."]
        what.append(f"One line per value of {_names(hue)}" if hue else "One line")
        what.append(": the mean over the finished runs that share its values; the band spans their minimum to "
                    "maximum (over seeds and any parameter not on a line). Metrics NaN in every run are left out.")
        sections.append(_figure(out, f"sweep_{_slug(x)}.png", fig, f"Metrics against {x}",
                                what[0] + " " + what[1] + what[2]))
    return "\n".join(sections)


def _names(params: list[str]) -> str:
    return ", ".join(f"`{p}`" for p in params)


def _determines(runs: pd.DataFrame, a: str, b: str) -> bool:
    """Whether each value of parameter ``a`` comes with one value of ``b`` (zipped, or b fixed per a)."""
    return bool((runs.groupby(runs[a].astype(str))[b].agg(lambda v: v.astype(str).nunique()) <= 1).all())


def _axes(runs: pd.DataFrame, params: list[str]) -> list[str]:
    """The parameters worth an x axis: one of each set that vary together (``zip``), the first kept."""
    out: list[str] = []
    for p in params:
        if not any(_determines(runs, q, p) and _determines(runs, p, q) for q in out):
            out.append(p)
    return out


def _grid(head: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in body)]
    return "\n".join(lines) + "\n"
