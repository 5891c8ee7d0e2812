"""The report of a sweep folder: a table of means per combination, outcome metrics against each parameter.

Plotted: the outcome metrics of :data:`cosim.analysis.sweep_plots.METRIC_AXES`
that vary between the finished runs, one of each set that are equal in every
run (``critical_path_time_s`` equals ``total_time_s`` when nothing overlaps the
critical path), against each parameter that takes two values or more. Not
plotted: ``wall_time_s`` (machine noise, not a result) and ``n_events``
(bookkeeping); both stay in ``sweep.parquet``. Failed runs are listed and
marked on every panel.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from cosim.errors import CosimError

from .markdown import figure, table

MAX_LINES = 6   # lines per sweep panel; more combinations are pooled into one


def outcome_metrics(done: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The metrics worth a panel, and a note per metric left out (why)."""
    from .sweep_plots import METRIC_AXES

    plotted, notes = [], []
    for m in METRIC_AXES:
        if m not in done.columns or not done[m].notna().any():
            continue
        values = done[m].to_numpy(dtype=float)
        if np.nanmax(values) - np.nanmin(values) <= 1e-12 * max(1.0, float(np.nanmax(np.abs(values)))):
            notes.append(f"`{m}` ({values[~np.isnan(values)][0]:.6g} in every run)")
            continue
        twin = next((p for p in plotted if np.allclose(done[p].to_numpy(float), values, rtol=1e-12, atol=0,
                                                       equal_nan=True)), None)
        if twin is not None:
            notes.append(f"`{m}` (equals `{twin}` in every run)")
            continue
        plotted.append(m)
    return plotted, notes


def sweep_report(src: Path, out: Path) -> str:
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
    failed = index[index["status"] == "failed"]
    rows = [("runs", str(len(index))), *((f"runs {s}", str(n)) for s, n in status.items()),
            ("varied parameters", _names(params) or "none")]
    name = meta.get("name", src.name)
    sections = [f"# Report: sweep `{name}`\n", f"Source: `{src}`\n", table(rows)]
    if len(failed):
        sections.append("Failed runs (their error; the traceback is in `failed/<run_id>.txt`), marked x on every "
                        "figure:\n")
        sections.append(_grid(["run_id", *params, "error"],
                              [[r["run_id"], *(plots.short_label(str(r[p]), width=32) for p in params),
                                _cell(r.get("error"))] for r in failed.to_dict("records")]))
    metrics, left_out = outcome_metrics(done)
    if done.empty or not metrics:
        sections.append("No finished run yet: no figures.\n" if done.empty else
                        "No outcome metric varies between the finished runs: no figures.\n")
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
    tried = pd.concat([done, failed])
    xs = [x for x in (_axes(tried, groups) or params) if tried[x].astype(str).nunique() > 1]
    if not xs:
        sections.append("No parameter takes two values among the runs: no figures.\n")
        return "\n".join(sections)
    sections.append("## Figures\n")
    sections.append(f"Metrics plotted: {', '.join(f'`{m}`' for m in metrics)}\n")
    if left_out:
        sections.append(f"Not plotted: {', '.join(left_out)}; `wall_time_s` (machine noise) and `n_events` are not "
                        "outcomes (all are in `sweep.parquet`).\n")
    for x in xs:
        hue = [h for h in xs if h != x and not _determines(done, x, h)]
        along = [q for q in groups if q not in xs and _determines(done, x, q) and _determines(done, q, x)]
        if hue and done.groupby(hue, sort=False, dropna=False).ngroups > MAX_LINES:
            hue = []
        fig = plots.sweep_param(done, x, metrics, hue=hue, max_lines=MAX_LINES, failed=failed)
        what = [f"Each outcome metric against `{x}`"
                + (f", which varies together with {_names(along)}" if along else "") + "."]
        what.append(f"One line per value of {_names(hue)}" if hue else "One line")
        what.append(": the mean over the finished runs that share its values; the band spans their minimum to "
                    "maximum (over seeds and any parameter not on a line)"
                    + ("; x at the bottom: a failed run." if len(failed) else "."))
        sections.append(figure(out, f"sweep_{_slug(x)}.png", fig, f"Metrics against {x}",
                               what[0] + " " + what[1] + what[2]))
    return "\n".join(sections)


def _cell(text) -> str:
    text = "" if text is None or text != text else str(text).strip().splitlines()[-1]
    return text.replace("|", "/")[:120]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


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
