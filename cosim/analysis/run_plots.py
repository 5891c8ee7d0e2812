"""Figures of one run: timeline, event durations, loss and accuracy, critical path, busy time, round delay.

Each function takes DataFrames and returns a :class:`matplotlib.figure.Figure`;
saving is the caller's business (:mod:`cosim.analysis.report`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .analysis import accuracy_vs_time, client_round_delay, phase_time_per_client
from .style import FED_SERVER, kind_colors, legend_right, no_offset, row_label

WHOLE_RUN_ROUNDS = 3     # a timeline shows the whole run up to this many rounds, else the first and last
THIN = 0.004             # an event shorter than this fraction of the time axis also gets a tick mark
STRIP_MAX_CLIENTS = 20   # per-client round delay: a strip per client up to this many, else a CDF
IDLE_SHARE = 0.005       # busy time: a row busier than this share of the busiest one is not drawn


def timeline(events: pd.DataFrame, rounds: pd.DataFrame, *, max_rounds_whole: int = WHOLE_RUN_ROUNDS):
    """Gantt chart: one row per client and the federated server, a bar per event coloured by kind.

    The whole run in one panel when it has at most ``max_rounds_whole`` rounds, else
    two panels: the first round and the last. Server steps and queueing sit on the
    row of the client they serve. An event too short to see as a bar (under
    :data:`THIN` of the axis: milliseconds of compute beside seconds of transfer)
    is also marked by a tick of its colour above its row, so that it is seen.
    """
    kinds = list(dict.fromkeys(events["kind"].astype(str)))
    colors = kind_colors(kinds)
    rows = sorted(events["client"].unique(), key=lambda c: (c != FED_SERVER, c))
    ypos = {c: i for i, c in enumerate(rows)}
    all_rounds = sorted(events["round"].unique())
    windows = [all_rounds] if len(all_rounds) <= max_rounds_whole else [[all_rounds[0]], [all_rounds[-1]]]
    height = min(1.6 + 0.5 * len(rows), 16.0)
    fig, axes = plt.subplots(1, len(windows), figsize=(13 if len(windows) == 1 else 15, height),
                             sharey=True, squeeze=False, layout="constrained")
    ticked = False
    for ax, window in zip(axes[0], windows):
        sub = events[events["round"].isin(window)]
        lo, hi = float(sub["t_start_s"].min()), float(sub["t_end_s"].max())
        thin = THIN * max(hi - lo, 1e-12)
        for (client, kind), grp in sub.groupby(["client", sub["kind"].astype(str)]):
            y = ypos[client]
            ax.broken_barh(list(zip(grp["t_start_s"], grp["duration_s"])), (y - 0.3, 0.6), facecolors=colors[kind],
                           linewidth=0)
            short = grp[grp["duration_s"] < thin]
            if len(short):             # visible however short: a tick in the band above the bar
                ticked = True
                ax.plot(short["t_start_s"] + short["duration_s"] / 2, [y - 0.39] * len(short), "|",
                        color=colors[kind], markersize=7, markeredgewidth=1.6)
        span = rounds[rounds["round"].isin(window)] if len(rounds) else rounds
        for t in span["t_start_s"].tolist()[1:]:
            ax.axvline(t, color="black", linewidth=0.8, linestyle=":")
        ax.set_xlim(lo, hi + 0.01 * (hi - lo))
        which = "whole run" if len(window) > 1 or len(all_rounds) == 1 else f"round {window[0]}"
        ax.set_title(f"timeline, {which}")
        ax.set_xlabel("simulated time (s)")
        no_offset(ax)
    ax0 = axes[0][0]
    ax0.set_yticks(range(len(rows)), [row_label(c) for c in rows])
    ax0.set_ylim(len(rows) - 0.5, -0.55)
    if len(rows) > 40:                 # many clients: keep the row labels from overlapping
        ax0.tick_params(axis="y", labelsize=max(3.0, 400.0 / len(rows)))
    handles = [Patch(color=colors[k], label=k) for k in kinds]
    if ticked:
        handles.append(Line2D([], [], marker="|", linestyle="none", color="black", markersize=9,
                              label=f"tick: event < {100 * THIN:g}% of the axis"))
    legend_right(axes[0][-1], handles=handles, title="event kind")
    return fig


def event_durations(events: pd.DataFrame):
    """How long each kind of event takes: one dot per event on a log time axis, the median marked.

    The timeline's linear axis hides milliseconds of compute beside seconds of
    transfer; here every kind is on one readable scale.
    """
    kinds = list(dict.fromkeys(events["kind"].astype(str)))
    colors = kind_colors(kinds)
    fig, ax = plt.subplots(figsize=(10, 1.4 + 0.5 * len(kinds)), layout="constrained")
    rng = np.random.default_rng(0)         # jitter only: the figure is the same every time
    for i, kind in enumerate(kinds):
        d = events.loc[events["kind"].astype(str) == kind, "duration_s"].to_numpy(float)
        d = d[d > 0]
        if d.size == 0:
            ax.text(1.0, i, "  (no duration)", va="center", fontsize="small", transform=ax.get_yaxis_transform())
            continue
        ax.scatter(d, i + rng.uniform(-0.22, 0.22, d.size), s=10, alpha=0.55, color=colors[kind], linewidths=0)
        med = float(np.median(d))
        ax.plot([med, med], [i - 0.32, i + 0.32], color="black", linewidth=1.8)
        ax.annotate(_seconds(med), (med, i - 0.34), ha="center", va="bottom", fontsize="x-small")
    ax.set_xscale("log")
    ax.set_yticks(range(len(kinds)), kinds)
    ax.set_ylim(len(kinds) - 0.5, -0.6)
    ax.set_xlabel("duration of one event (simulated s, log scale)")
    ax.set_title("event durations per kind (dots: events; black bar: median)")
    ax.grid(axis="x", which="major", alpha=0.3)
    return fig


def _seconds(s: float) -> str:
    return f"{s * 1e6:.3g} µs" if s < 1e-3 else f"{s * 1e3:.3g} ms" if s < 1 else f"{s:.3g} s"


def loss_accuracy(events: pd.DataFrame, rounds: pd.DataFrame, summary: dict | None = None):
    """Training and held-out loss (top) and held-out accuracy (bottom) against simulated time.

    Held-out values are markers where they were measured; a line joins them only when
    every round was evaluated (else a line would claim values nobody measured). The
    accuracy's error bars are its 95% Wilson interval over the held-out examples.
    """
    evals = accuracy_vs_time(rounds, summary)
    every_round = len(rounds) > 0 and len(evals) == len(rounds) + 1
    style = "s-" if every_round else "s"
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True, layout="constrained")
    steps = events[events["loss"].notna()] if "loss" in events else events.iloc[:0]
    if len(steps):
        top.scatter(steps["t_end_s"], steps["loss"], s=8, alpha=0.45, color="#1f77b4",
                    label="training loss of one step")
    if "train_loss" in rounds and rounds["train_loss"].notna().any():
        top.plot(rounds["t_end_s"], rounds["train_loss"], "-o", color="#08306b", label="training loss, round mean")
    if evals["loss"].notna().any():
        top.plot(evals["time_s"], evals["loss"], style, color="#d62728", markersize=7, linewidth=1,
                 label="held-out loss" + ("" if every_round else " (measured only here)"))
    top.set_ylabel("loss (cross-entropy, nats)")
    top.set_title("loss and accuracy over simulated time")
    if top.has_data():
        top.legend(fontsize="small")
    if evals["accuracy"].notna().any():
        n = evals["n"].iloc[0]
        err = np.vstack([evals["accuracy"] - evals["accuracy_lo"], evals["accuracy_hi"] - evals["accuracy"]])
        bottom.errorbar(evals["time_s"], evals["accuracy"], yerr=np.nan_to_num(err), fmt=style, color="#d62728",
                        markersize=7, linewidth=1, capsize=4,
                        label=f"held-out accuracy, 95% Wilson interval (n={n:g})" if n == n else "held-out accuracy")
        for row in evals.itertuples():
            bottom.annotate(f"{row.accuracy:.3f}", (row.time_s, row.accuracy), textcoords="offset points",
                            xytext=(8, 4), ha="left", fontsize="small")
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
        no_offset(ax)
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
        ax.annotate(f"{_seconds(v)} ({100 * v / total:.1f} %)" if total > 0 else _seconds(v), (v, yi),
                    textcoords="offset points", xytext=(4, 0), va="center", fontsize="small")
    ax.set_xlim(0, 1.25 * max(float(per_kind.max()), 1e-12))
    ax.set_xlabel("time on the critical path (s)")
    ax.set_title(f"critical path: what the {total:.3f} s total is made of")
    return fig


def busy_rows(events: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Busy seconds per kind of each row worth a bar, and the rows left out (busy under :data:`IDLE_SHARE`)."""
    table = phase_time_per_client(events)
    table = table.loc[sorted(table.index, key=lambda c: (c == FED_SERVER, c))]
    total = table.sum(axis=1)
    idle = total < IDLE_SHARE * float(total.max() or 1.0)
    return table[~idle], total[idle]


def busy_time(events: pd.DataFrame):
    """Busy seconds per kind for each client (and the federated server if it is busy enough to see).

    Stacked bars, the first kind at the bottom; the legend lists the kinds top to
    bottom as they stack.
    """
    table, left_out = busy_rows(events)
    colors = kind_colors(table.columns)
    fig, ax = plt.subplots(figsize=(min(max(7.0, 1.5 + 0.7 * len(table)), 16.0), 5), layout="constrained")
    x = np.arange(len(table))
    bottom = np.zeros(len(table))
    handles = []
    for kind in table.columns:
        handles.append(ax.bar(x, table[kind].values, bottom=bottom, color=colors[kind], label=kind, width=0.7))
        bottom += table[kind].values
    if len(table) <= 20:
        ax.set_xticks(x, [row_label(c) for c in table.index], rotation=45 if len(table) > 10 else 0)
    else:                              # many clients: numbers only, a readable subset of them
        step = -(-len(table) // 20)
        ticks = [i for i in x if i % step == 0 or table.index[i] == FED_SERVER]
        ax.set_xticks(ticks, [("fed." if table.index[i] == FED_SERVER else str(table.index[i])) for i in ticks])
        ax.set_xlabel("client (fed.: the federated server)")
    ax.set_ylabel("busy time, summed over the run (s)")
    title = "busy time per phase and client"
    if len(left_out):
        title += "\n(not drawn: " + ", ".join(f"{row_label(c)} {_seconds(s)}" for c, s in left_out.items()) + ")"
    ax.set_title(title)
    legend_right(ax, handles=handles[::-1], labels=list(table.columns)[::-1], title="event kind (as stacked)")
    no_offset(ax)
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
    handles = []
    for part_name, color in (("compute", "#3b4cc0"), ("transmission", "#ff7f0e")):
        if part_name in table:
            handles.append(ax.bar(x, table[part_name].values, bottom=bottom, color=color, label=part_name,
                                  width=0.7))
            bottom += table[part_name].values
    step = max(1, -(-len(table) // 20))
    ax.set_xticks(x[::step], [str(c) for c in table.index[::step]])
    ax.set_xlabel("client")
    ax.set_ylabel("energy over the run (J)")
    ax.set_title("energy per device")
    legend_right(ax, handles=handles[::-1])          # top of the legend = top of the stack
    no_offset(ax)
    return fig


def round_delay(events: pd.DataFrame, rounds: pd.DataFrame):
    """Each client's delay in each round (round start to its adapter upload done).

    Up to :data:`STRIP_MAX_CLIENTS` clients: a strip per client, one dot per round
    (coloured by round), so a reader sees who is slow and whether it is always the
    same client. More clients: the empirical CDF over clients and rounds.
    """
    delays = client_round_delay(events, rounds if len(rounds) else None)
    fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
    if delays.empty:
        ax.text(0.5, 0.5, "no adapter_upload events: no per-client round delay", ha="center", va="center",
                transform=ax.transAxes)
        return fig
    barrier = float(rounds["duration_s"].mean()) if len(rounds) and "duration_s" in rounds else None
    clients = sorted(delays["client"].unique())
    if len(clients) <= STRIP_MAX_CLIENTS:
        n_rounds = int(delays["round"].max()) + 1
        cmap = plt.get_cmap("viridis")
        offsets = np.linspace(-0.25, 0.25, n_rounds) if n_rounds > 1 else np.zeros(1)
        pos = {c: i for i, c in enumerate(clients)}
        x = delays["client"].map(pos).to_numpy(float) + offsets[delays["round"].to_numpy()]
        sc = ax.scatter(x, delays["delay_s"], c=delays["round"], cmap=cmap, vmin=0, vmax=max(n_rounds - 1, 1),
                        s=36, edgecolors="black", linewidths=0.4, zorder=3)
        if n_rounds > 1:
            fig.colorbar(sc, ax=ax, label="round", ticks=range(0, n_rounds, max(1, n_rounds // 10)))
        ax.set_xticks(range(len(clients)), [f"client {c}" for c in clients],
                      rotation=45 if len(clients) > 10 else 0)
        ax.set_ylabel("round start to the client's adapter upload done (s)")
        ax.set_title("per-client round delay, one dot per round (the slowest sets the round)")
        if barrier is not None:
            ax.axhline(barrier, color="grey", linestyle="--", label="mean round duration (with aggregation and "
                                                                      "broadcast)")
            ax.legend(fontsize="small", loc="lower right")
        ax.set_ylim(bottom=0)
    else:
        values = np.sort(delays["delay_s"].to_numpy())
        frac = np.arange(1, len(values) + 1) / len(values)
        ax.step(np.concatenate([[values[0]], values]), np.concatenate([[0.0], frac]), where="post",
                color="black", label=f"all clients and rounds (n={len(values)})")
        if barrier is not None:
            ax.axvline(barrier, color="grey", linestyle="--", label="mean round duration (barrier)")
        legend_right(ax)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("time from round start to the client's adapter upload done (s)")
        ax.set_ylabel("fraction of (client, round) pairs")
        ax.set_title(f"per-client round delay, empirical CDF ({len(clients)} clients)")
    no_offset(ax)
    return fig
