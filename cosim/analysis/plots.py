"""Figures of a run or a sweep (matplotlib, off-screen).

Each function takes DataFrames and returns a :class:`matplotlib.figure.Figure`;
saving is the caller's business (``cosim.analysis.report``). No global style is changed.
Kinds are coloured from :data:`KIND_COLORS`; a kind not listed there (a new
strategy's) gets a neutral grey and still appears in the legend.
"""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")  # off-screen: reports are written by scripts and on headless machines

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .analysis import accuracy_vs_time, client_round_delay, phase_time_per_client  # noqa: E402

# Compute in blues/greens, uplink in oranges, downlink in purples, waits in red.
KIND_COLORS = {
    "client_forward": "#1f77b4", "client_backward": "#6baed6", "local_step": "#17becf",
    "server_step": "#2ca02c", "aggregate": "#8c564b", "server_queue": "#d62728",
    "uplink": "#ff7f0e", "adapter_upload": "#fdae6b",
    "downlink": "#9467bd", "broadcast": "#c5b0d5",
}
_GREYS = ("#7f7f7f", "#b0b0b0", "#505050", "#d0d0d0")
FED_SERVER = -1
WHOLE_RUN_ROUNDS = 3   # a timeline shows the whole run up to this many rounds, else the first and last
_MARKERS = ("o", "s", "^", "D", "v", "P")
_DASHES = ("-", "--", "-.", ":")

# Sweep metrics: axis label and the factor from the stored unit to the plotted one.
METRIC_AXES = {
    "total_time_s": ("total simulated time (s)", 1.0),
    "critical_path_time_s": ("critical path time (s)", 1.0),
    "uplink_bytes": ("uplink traffic (MB)", 1e-6),
    "downlink_bytes": ("downlink traffic (MB)", 1e-6),
    "final_train_loss": ("final training loss (nats)", 1.0),
    "before.accuracy": ("held-out accuracy before (fraction)", 1.0),
    "before.loss": ("held-out loss before (nats)", 1.0),
    "after.accuracy": ("held-out accuracy after (fraction)", 1.0),
    "after.loss": ("held-out loss after (nats)", 1.0),
    "n_events": ("events (count)", 1.0),
    "wall_time_s": ("wall-clock time of the run (s)", 1.0),
}


def kind_colors(kinds) -> dict[str, str]:
    """A colour per kind: the fixed palette, then greys for kinds it does not know."""
    out, extra = {}, 0
    for kind in kinds:
        if kind in KIND_COLORS:
            out[kind] = KIND_COLORS[kind]
        else:
            out[kind] = _GREYS[extra % len(_GREYS)]
            extra += 1
    return out


def _row_label(client: int) -> str:
    return "fed. server" if client == FED_SERVER else f"client {client}"


def _legend_right(ax, **kw) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize="small", **kw)


def timeline(events: pd.DataFrame, rounds: pd.DataFrame, *, max_rounds_whole: int = WHOLE_RUN_ROUNDS):
    """Gantt chart: one row per client and the federated server, a bar per event coloured by kind.

    The whole run in one panel when it has at most ``max_rounds_whole`` rounds,
    else two panels: the first round and the last. Server steps and queueing sit on
    the row of the client they serve.
    """
    kinds = list(dict.fromkeys(events["kind"].astype(str)))
    colors = kind_colors(kinds)
    rows = sorted(events["client"].unique(), key=lambda c: (c != FED_SERVER, c))
    ypos = {c: i for i, c in enumerate(rows)}
    all_rounds = sorted(events["round"].unique())
    windows = [all_rounds] if len(all_rounds) <= max_rounds_whole else [[all_rounds[0]], [all_rounds[-1]]]
    height = min(1.6 + 0.42 * len(rows), 16.0)
    fig, axes = plt.subplots(1, len(windows), figsize=(13 if len(windows) == 1 else 15, height),
                             sharey=True, squeeze=False, layout="constrained")
    for ax, window in zip(axes[0], windows):
        sub = events[events["round"].isin(window)]
        for (client, kind), grp in sub.groupby(["client", sub["kind"].astype(str)]):
            spans = list(zip(grp["t_start_s"], grp["duration_s"]))
            ax.broken_barh(spans, (ypos[client] - 0.38, 0.76), facecolors=colors[kind], linewidth=0)
            if client == FED_SERVER:   # aggregation takes microseconds: mark where it happens
                ax.plot(grp["t_start_s"], [ypos[client]] * len(grp), "|", color=colors[kind], markersize=14,
                        markeredgewidth=2.5)
        span = rounds[rounds["round"].isin(window)] if len(rounds) else rounds
        for t in span["t_start_s"].tolist()[1:]:
            ax.axvline(t, color="black", linewidth=0.8, linestyle=":")
        lo, hi = float(sub["t_start_s"].min()), float(sub["t_end_s"].max())
        ax.set_xlim(lo, hi + 0.01 * (hi - lo))
        which = "whole run" if len(window) > 1 or len(all_rounds) == 1 else f"round {window[0]}"
        ax.set_title(f"timeline, {which}")
        ax.set_xlabel("simulated time (s)")
    ax0 = axes[0][0]
    ax0.set_yticks(range(len(rows)), [_row_label(c) for c in rows])
    ax0.set_ylim(len(rows) - 0.5, -0.5)
    if len(rows) > 40:                 # many clients: keep the row labels from overlapping
        ax0.tick_params(axis="y", labelsize=max(3.0, 400.0 / len(rows)))
    handles = [Patch(color=colors[k], label=k) for k in kinds]
    axes[0][-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small",
                       title="event kind")
    return fig


def loss_accuracy(events: pd.DataFrame, rounds: pd.DataFrame, summary: dict | None = None):
    """Training and held-out loss (top) and held-out accuracy (bottom) against simulated time."""
    evals = accuracy_vs_time(rounds, summary)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True, layout="constrained")
    steps = events[events["loss"].notna()] if "loss" in events else events.iloc[:0]
    if len(steps):
        top.scatter(steps["t_end_s"], steps["loss"], s=8, alpha=0.45, color="#1f77b4",
                    label="training loss of one step")
    if "train_loss" in rounds and rounds["train_loss"].notna().any():
        top.plot(rounds["t_end_s"], rounds["train_loss"], "-o", color="#08306b", label="training loss, round mean")
    if evals["loss"].notna().any():
        top.plot(evals["time_s"], evals["loss"], "s--", color="#d62728", markersize=7, label="held-out loss")
    top.set_ylabel("loss (cross-entropy, nats)")
    top.set_title("loss and accuracy over simulated time")
    if top.has_data():
        top.legend(fontsize="small")
    if evals["accuracy"].notna().any():
        bottom.plot(evals["time_s"], evals["accuracy"], "s--", color="#d62728", markersize=7,
                    label="held-out accuracy")
        for row in evals.itertuples():
            bottom.annotate(f"{row.accuracy:.3f}", (row.time_s, row.accuracy), textcoords="offset points",
                            xytext=(0, 8), ha="center", fontsize="small")
        bottom.legend(fontsize="small", loc="lower right")
    else:
        bottom.text(0.5, 0.5, "no held-out evaluation in this run", ha="center", va="center",
                    transform=bottom.transAxes)
    bottom.set_ylim(0, 1.05)
    bottom.set_ylabel("held-out accuracy (fraction)")
    bottom.set_xlabel("simulated time (s)")
    for ax in (top, bottom):
        for t in rounds["t_start_s"].tolist()[1:]:
            ax.axvline(t, color="grey", linewidth=0.6, linestyle=":")
    return fig


def critical_path_breakdown(path: pd.DataFrame):
    """Seconds of the critical path per kind (horizontal bars, share of the total annotated)."""
    per_kind = path.groupby(path["kind"].astype(str), sort=False)["duration_s"].sum()
    total = float(per_kind.sum())
    colors = kind_colors(per_kind.index)
    fig, ax = plt.subplots(figsize=(9, 1.4 + 0.45 * len(per_kind)), layout="constrained")
    y = np.arange(len(per_kind))
    ax.barh(y, per_kind.values, color=[colors[k] for k in per_kind.index])
    ax.set_yticks(y, per_kind.index)
    ax.invert_yaxis()
    for yi, v in zip(y, per_kind.values):
        ax.annotate(f"{v:.3g} s ({100 * v / total:.1f} %)" if total > 0 else f"{v:.3g} s", (v, yi),
                    textcoords="offset points", xytext=(4, 0), va="center", fontsize="small")
    ax.set_xlim(0, 1.25 * max(float(per_kind.max()), 1e-12))
    ax.set_xlabel("time on the critical path (s)")
    ax.set_title(f"critical path: what the {total:.3f} s total is made of")
    return fig


def busy_time(events: pd.DataFrame):
    """Busy seconds per kind for each client and the federated server (stacked bars)."""
    table = phase_time_per_client(events)
    table = table.loc[sorted(table.index, key=lambda c: (c == FED_SERVER, c))]
    colors = kind_colors(table.columns)
    fig, ax = plt.subplots(figsize=(min(max(7.0, 1.5 + 0.7 * len(table)), 16.0), 5), layout="constrained")
    x = np.arange(len(table))
    bottom = np.zeros(len(table))
    for kind in table.columns:
        ax.bar(x, table[kind].values, bottom=bottom, color=colors[kind], label=kind, width=0.7)
        bottom += table[kind].values
    if len(table) <= 20:
        ax.set_xticks(x, [_row_label(c) for c in table.index], rotation=45 if len(table) > 10 else 0)
    else:                              # many clients: numbers only, a readable subset of them
        step = -(-len(table) // 20)
        ticks = [i for i in x if i % step == 0 or table.index[i] == FED_SERVER]
        ax.set_xticks(ticks, [("fed." if table.index[i] == FED_SERVER else str(table.index[i])) for i in ticks])
        ax.set_xlabel("client (fed.: the federated server)")
    ax.set_ylabel("busy time, summed over the run (s)")
    ax.set_title("busy time per phase and client")
    _legend_right(ax, title="event kind")
    return fig


def energy_per_device(events: pd.DataFrame):
    """Each device's energy over the run, compute and transmission stacked (J), from ``energy_j``."""
    mine = events[events["energy_of"] == "device"]
    part = np.where(mine["n_subchannels"] > 0, "transmission", "compute")
    table = mine.assign(part=part).pivot_table(index="client", columns="part", values="energy_j", aggfunc="sum",
                                               fill_value=0.0)
    fig, ax = plt.subplots(figsize=(min(max(7.0, 1.5 + 0.6 * len(table)), 16.0), 5), layout="constrained")
    x = np.arange(len(table))
    bottom = np.zeros(len(table))
    for part_name, color in (("compute", "#1f77b4"), ("transmission", "#ff7f0e")):
        if part_name in table:
            ax.bar(x, table[part_name].values, bottom=bottom, color=color, label=part_name, width=0.7)
            bottom += table[part_name].values
    step = max(1, -(-len(table) // 20))
    ax.set_xticks(x[::step], [str(c) for c in table.index[::step]])
    ax.set_xlabel("client")
    ax.set_ylabel("energy over the run (J)")
    ax.set_title("energy per device")
    _legend_right(ax)
    return fig


def round_delay_cdf(events: pd.DataFrame, rounds: pd.DataFrame):
    """Empirical CDF of the per-client round delay (round start to the client's adapter upload done)."""
    delays = client_round_delay(events, rounds if len(rounds) else None)
    fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
    if delays.empty:
        ax.text(0.5, 0.5, "no adapter_upload events: no per-client round delay", ha="center", va="center",
                transform=ax.transAxes)
    else:
        values = np.sort(delays["delay_s"].to_numpy())
        frac = np.arange(1, len(values) + 1) / len(values)
        ax.step(np.concatenate([[values[0]], values]), np.concatenate([[0.0], frac]), where="post",
                color="black", label=f"all clients and rounds (n={len(values)})")
        clients = sorted(delays["client"].unique())
        if len(clients) <= 10:
            cmap = plt.get_cmap("tab10")
            for i, c in enumerate(clients):
                d = np.sort(delays.loc[delays["client"] == c, "delay_s"].to_numpy())
                ax.plot(d, np.searchsorted(values, d, side="right") / len(values), "o", color=cmap(i),
                        markersize=6, label=f"client {c}")
        if len(rounds) and "duration_s" in rounds:
            ax.axvline(float(rounds["duration_s"].mean()), color="grey", linestyle="--",
                       label="mean round duration (barrier)")
        _legend_right(ax)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("time from round start to the client's adapter upload done (s)")
    ax.set_ylabel("fraction of (client, round) pairs")
    ax.set_title("per-client round delay, empirical CDF")
    return fig


def short_label(label: str, width: int = 28) -> str:
    """A category label, numbers of a list in ``%g`` form, cut to ``width`` characters."""
    try:
        values = json.loads(label)
    except ValueError:
        values = None
    if isinstance(values, list) and all(isinstance(v, (int, float)) for v in values):
        label = "[" + ", ".join(f"{v:g}" for v in values) + "]"
    return label if len(label) <= width else label[:width - 3] + "..."


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def sweep_param(runs: pd.DataFrame, param: str, metrics: list[str], *, hue: list[str] | None = None,
                max_lines: int = 6):
    """Each metric against one varied parameter: mean over the other runs at each value, min-max band.

    Parameters
    ----------
    runs : DataFrame
        One row per finished run (``load_sweep(...).runs`` with ``status == "done"``).
    param : str
        The parameter on the x axis (numeric axis for numbers, else categorical in sweep order).
    metrics : list of str
        Columns of ``runs`` to plot, one panel each.
    hue : list of str
        Other parameters that each get a line per value combination (at most
        ``max_lines`` combinations; beyond that, everything is pooled into one line).
    """
    hue = [h for h in (hue or []) if h in runs]
    groups = runs.groupby(hue, sort=False, dropna=False) if hue else [((), runs)]
    groups = list(groups)
    if len(groups) > max_lines:
        groups, hue = [((), runs)], []
    numeric = _is_numeric(runs[param])
    categories = list(dict.fromkeys(runs[param].astype(str))) if not numeric else []
    ncols = min(3, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols + 1.5, 3.4 * nrows + 0.6), squeeze=False,
                             layout="constrained")
    cmap = plt.get_cmap("tab10")
    for ax, metric in zip(axes.flat, metrics):
        label, scale = METRIC_AXES.get(metric, (metric, 1.0))
        for i, (key, grp) in enumerate(groups):
            stats = (grp.assign(_x=grp[param] if numeric else grp[param].astype(str))
                     .groupby("_x", sort=False)[metric].agg(["mean", "min", "max", "count"]))
            stats = stats[stats["count"] > 0]
            if numeric:
                stats = stats.sort_index()
                x = stats.index.to_numpy(dtype=float)
            else:
                stats = stats.reindex([c for c in categories if c in stats.index])
                x = np.array([categories.index(c) for c in stats.index], dtype=float)
            key = key if isinstance(key, tuple) else (key,)
            name = ", ".join(f"{h}={v}" for h, v in zip(hue, key)) or "mean over runs"
            # Distinct markers, dashes and shrinking sizes keep coinciding lines visible.
            ax.plot(x, stats["mean"] * scale, color=cmap(i % 10), label=name, marker=_MARKERS[i % len(_MARKERS)],
                    linestyle=_DASHES[i % len(_DASHES)], markersize=max(8.0 - 1.2 * i, 3.5))
            if (stats["count"] > 1).any():
                ax.fill_between(x, stats["min"] * scale, stats["max"] * scale, color=cmap(i % 10), alpha=0.18,
                                linewidth=0)
        if not numeric:
            names = [short_label(c) for c in categories]
            tilt = len(categories) > 4 or max(map(len, names)) > 12
            ax.set_xticks(range(len(categories)), names, rotation=25 if tilt else 0, ha="right" if tilt else "center")
        elif runs[param].nunique() <= 12:
            ax.set_xticks(sorted(runs[param].dropna().unique()))
        ax.set_xlabel(param)
        ax.set_ylabel(label)
        ax.set_title(metric, fontsize="medium")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    handles.append(Patch(color="grey", alpha=0.3))
    labels.append("band: min-max over runs (seeds)")
    fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)), fontsize="small")
    fig.suptitle(f"sweep: metrics against {param}")
    return fig


def save(fig, path) -> None:
    """Write ``fig`` as PNG and release it."""
    try:
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
