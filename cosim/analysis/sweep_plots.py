"""Figures of a sweep: each outcome metric against one varied parameter, failed runs marked.

Each function takes DataFrames and returns a :class:`matplotlib.figure.Figure`;
saving is the caller's business (:mod:`cosim.analysis.report`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .style import no_offset, short_label

_MARKERS = ("o", "s", "^", "D", "v", "P")
_DASHES = ("-", "--", "-.", ":")

# Outcome metrics of a run (a sweep plots those that vary): axis label and the factor from the stored unit
# to the plotted one. Not here: wall_time_s (machine noise) and n_events (bookkeeping).
METRIC_AXES = {
    "total_time_s": ("total simulated time (s)", 1.0),
    "critical_path_time_s": ("critical path time (s)", 1.0),
    "uplink_bytes": ("uplink traffic (MB)", 1e-6),
    "downlink_bytes": ("downlink traffic (MB)", 1e-6),
    "energy.devices_j": ("energy of all devices (J)", 1.0),
    "final_train_loss": ("final training loss (nats)", 1.0),
    "before.accuracy": ("held-out accuracy before (fraction)", 1.0),
    "before.loss": ("held-out loss before (nats)", 1.0),
    "after.accuracy": ("held-out accuracy after (fraction)", 1.0),
    "after.loss": ("held-out loss after (nats)", 1.0),
}


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def sweep_param(runs: pd.DataFrame, param: str, metrics: list[str], *, hue: list[str] | None = None,
                max_lines: int = 6, failed: pd.DataFrame | None = None):
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
    failed : DataFrame, optional
        Runs that failed (index rows): a red cross at the bottom of every panel at
        their value of ``param``, so a missing point is seen as missing.
    """
    failed = failed if failed is not None and len(failed) and param in failed else runs.iloc[:0]
    hue = [h for h in (hue or []) if h in runs]
    groups = runs.groupby(hue, sort=False, dropna=False) if hue else [((), runs)]
    groups = list(groups)
    if len(groups) > max_lines:
        groups, hue = [((), runs)], []
    numeric = _is_numeric(runs[param]) and (failed.empty or _is_numeric(failed[param]))
    categories = list(dict.fromkeys([*runs[param].astype(str), *failed[param].astype(str)])) if not numeric else []
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
        if len(failed):
            fx = (failed[param].to_numpy(dtype=float) if numeric
                  else np.array([categories.index(c) for c in failed[param].astype(str)], dtype=float))
            ax.plot(fx, np.full(fx.size, 0.03), "x", color="#d62728", markersize=9, markeredgewidth=2,
                    transform=ax.get_xaxis_transform(), clip_on=False)
        if not numeric:
            names = [short_label(c) for c in categories]
            tilt = len(categories) > 4 or max(map(len, names)) > 12
            ax.set_xticks(range(len(categories)), names, rotation=25 if tilt else 0, ha="right" if tilt else "center")
        elif pd.concat([runs[param], failed[param]]).nunique() <= 12:
            ax.set_xticks(sorted(pd.concat([runs[param], failed[param]]).dropna().unique()))
        ax.set_xlabel(param)
        ax.set_ylabel(label)
        ax.set_title(metric, fontsize="medium")
        ax.grid(alpha=0.3)
        no_offset(ax)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    handles.append(Patch(color="grey", alpha=0.3))
    labels.append("band: min-max over runs (seeds)")
    if len(failed):
        handles.append(Line2D([], [], marker="x", linestyle="none", color="#d62728", markeredgewidth=2))
        labels.append(f"failed run ({len(failed)}): no metrics")
    fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)), fontsize="small")
    fig.suptitle(f"sweep: metrics against {param}")
    return fig
