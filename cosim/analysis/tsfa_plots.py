"""TSFA's online stage per round: latency against the budget, the virtual queue, sparsity, bandwidth shares.

Reads only columns every run writes: ``rounds.duration_s``, ``predicted_s`` and
``virtual_queue``; ``clients.sparsity`` and ``bandwidth_share``; the budget from
``summary["strategy"]["tsfa"]``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .style import no_offset

MAX_CLIENT_LINES = 10   # more clients: their mean and range instead of one line each


def is_tsfa(rounds: pd.DataFrame, summary: dict) -> bool:
    """Whether the run is a TSFA run (a virtual queue was kept)."""
    strategy = summary.get("strategy") or {}
    return strategy.get("name") == "tsfa" or ("virtual_queue" in rounds and rounds["virtual_queue"].notna().any())


def tsfa_rounds(rounds: pd.DataFrame, clients: pd.DataFrame, summary: dict):
    """Four panels over rounds: latency and budget, the virtual queue, each client's sparsity and bandwidth share."""
    tsfa = (summary.get("strategy") or {}).get("tsfa") or {}
    budget = tsfa.get("latency_budget_s")
    fig, axes = plt.subplots(2, 2, figsize=(13, 7.5), sharex=True, layout="constrained")
    (lat, queue), (sparse, share) = axes
    r = rounds["round"].to_numpy()
    lat.bar(r, rounds["duration_s"], color="#9ecae1", label="realised round latency")
    if "predicted_s" in rounds and rounds["predicted_s"].notna().any():
        lat.plot(r, rounds["predicted_s"], "o", color="#08519c", label="predicted when decided")
    if budget is not None:
        lat.axhline(budget, color="#d62728", linestyle="--", label=f"budget {budget:g} s")
        running = np.cumsum(rounds["duration_s"]) / np.arange(1, len(rounds) + 1)
        lat.plot(r, running, "-", color="black", linewidth=1.2, label="running mean latency")
    lat.set_ylabel("round latency (s)")
    lat.set_title("latency against the long-term budget")
    lat.legend(fontsize="small")
    queue.plot(r, rounds["virtual_queue"], "s-", color="#6a51a3")
    queue.set_ylabel("virtual queue Q after the round (s)")
    queue.set_title("Q <- max(Q + latency - budget, 0)")
    queue.set_ylim(bottom=0)
    _per_client(sparse, clients, "sparsity", "sparsity rho (fraction withheld)")
    sparse.set_ylim(-0.02, 1.25)                # the top band holds the legend
    sparse.set_yticks(np.linspace(0, 1, 6))
    sparse.set_title("chosen sparsity per client")
    _shares(share, clients)
    for ax in (sparse, share):
        ax.set_xlabel("round")
    for ax in axes.flat:
        no_offset(ax)
        if len(r) <= 20:
            ax.set_xticks(r)
    fig.suptitle(f"TSFA online stage (V = {tsfa.get('v', '?')}, rank {(summary.get('strategy') or {}).get('rank')})")
    return fig


def _per_client(ax, clients: pd.DataFrame, column: str, label: str) -> None:
    if clients.empty or column not in clients:
        ax.text(0.5, 0.5, f"no {column} recorded", ha="center", va="center", transform=ax.transAxes)
        return
    table = clients.pivot_table(index="round", columns="client", values=column)
    if table.shape[1] <= MAX_CLIENT_LINES:
        cmap = plt.get_cmap("tab10")
        for i, c in enumerate(table.columns):
            ax.plot(table.index, table[c], "o-", color=cmap(i), markersize=4, linewidth=1, label=f"client {c}")
        ax.legend(fontsize="x-small", ncols=5, loc="upper center")
    else:
        ax.fill_between(table.index, table.min(axis=1), table.max(axis=1), alpha=0.25, label="range over clients")
        ax.plot(table.index, table.mean(axis=1), "o-", label="mean over clients")
        ax.legend(fontsize="small")
    ax.set_ylabel(label)


def _shares(ax, clients: pd.DataFrame) -> None:
    if clients.empty or "bandwidth_share" not in clients:
        ax.text(0.5, 0.5, "no bandwidth shares recorded", ha="center", va="center", transform=ax.transAxes)
        return
    table = clients.pivot_table(index="round", columns="client", values="bandwidth_share").fillna(0.0)
    bottom = np.zeros(len(table))
    cmap = plt.get_cmap("tab10" if table.shape[1] <= 10 else "viridis")
    for i, c in enumerate(table.columns):
        color = cmap(i) if table.shape[1] <= 10 else cmap(i / max(table.shape[1] - 1, 1))
        ax.bar(table.index, table[c], bottom=bottom, color=color, width=0.8,
               label=f"client {c}" if table.shape[1] <= 10 else None)
        bottom += table[c].to_numpy()
    ax.set_ylim(0, 1.25)                        # the top band holds the legend
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("share of the cell's subchannels")
    ax.set_title("bandwidth shares (whole subchannels)")
    if table.shape[1] <= 10:
        ax.legend(fontsize="x-small", ncols=5, loc="upper center")
