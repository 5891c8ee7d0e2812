"""What each figure shows (issue 14): read back from the matplotlib objects, not from the pixels."""

import colorsys
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb

from cosim.analysis import accuracy_vs_time, load_run, plots, wilson_interval, write_report
from cosim.analysis.sweep_report import outcome_metrics

PAIRS = [("client_forward", "client_backward"), ("uplink", "adapter_upload"), ("downlink", "broadcast"),
         ("server_step", "client_forward"), ("server_queue", "uplink")]


def hue_deg(color: str) -> float:
    return 360 * colorsys.rgb_to_hsv(*to_rgb(color))[0]


@pytest.mark.parametrize("a, b", PAIRS)
def test_paired_phases_get_different_hues(a, b):
    d = abs(hue_deg(plots.KIND_COLORS[a]) - hue_deg(plots.KIND_COLORS[b]))
    assert min(d, 360 - d) >= 25, (a, b)                # not two shades of one hue


@pytest.fixture(scope="module")
def run(tiny_run):
    return load_run(tiny_run)


def test_short_events_get_a_tick_on_the_timeline(run):
    events, rounds = run.events, run.rounds
    fig = plots.timeline(events, rounds)
    ticks = sum(len(line.get_xdata()) for ax in fig.axes for line in ax.lines if line.get_marker() == "|")
    expected = 0
    for window in ([0], [3]):                            # 4 rounds: the first and the last panel
        sub = events[events["round"].isin(window)]
        span = sub["t_end_s"].max() - sub["t_start_s"].min()
        expected += int((sub["duration_s"] < plots.THIN * span).sum())
    assert ticks == expected > 0
    labels = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert labels[-1].startswith("tick: event <")


def test_event_durations_are_on_a_log_axis_with_every_kind(run):
    fig = plots.event_durations(run.events)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_yticklabels()] == list(dict.fromkeys(run.events["kind"].astype(str)))


def test_busy_time_leaves_out_the_idle_fed_server_and_lists_kinds_as_stacked(run):
    table, left_out = plots.busy_rows(run.events)
    assert -1 not in table.index and list(left_out.index) == [-1]     # microseconds of averaging
    fig = plots.busy_time(run.events)
    ax = fig.axes[0]
    assert "not drawn: fed. server" in ax.get_title()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == list(table.columns)[::-1]                         # top of the legend = top of the stack


def test_few_clients_get_a_strip_per_client(run):
    fig = plots.round_delay(run.events, run.rounds)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["client 0", "client 1", "client 2"]
    assert len(ax.collections[0].get_offsets()) == 3 * 4                 # a dot per client and round


def held_out_line(fig, label):
    return next(line for ax in fig.axes for line in ax.lines if line.get_label().startswith(label))


def test_held_out_points_are_joined_only_when_every_round_was_measured(run):
    # The tiny run evaluates every 2 rounds: markers only.
    fig = plots.loss_accuracy(run.events, run.rounds, run.summary)
    assert held_out_line(fig, "held-out loss").get_linestyle() == "None"
    every = run.rounds.copy()
    every["accuracy"], every["eval_loss"] = 0.6, 2.0                     # as if evaluated after every round
    fig = plots.loss_accuracy(run.events, every, run.summary)
    assert held_out_line(fig, "held-out loss").get_linestyle() == "-"


def test_accuracy_error_bars_are_the_wilson_interval(run):
    fig = plots.loss_accuracy(run.events, run.rounds, run.summary)
    bottom = fig.axes[1]
    [bars] = [c for c in bottom.collections if len(c.get_segments())]
    segments = bars.get_segments()
    n = run.summary["after"]["n"]
    first = accuracy_vs_time(run.rounds, run.summary).iloc[0]           # before training
    lo, hi = wilson_interval(first["accuracy"], n)
    assert (first["accuracy_lo"], first["accuracy_hi"]) == (lo, hi)
    assert segments[0][:, 1].tolist() == pytest.approx([lo, hi])
    assert f"n={n}" in bottom.get_legend().get_texts()[0].get_text()


def test_a_tsfa_run_gets_its_own_figure(tiny_run, tmp_path):
    src = tmp_path / "tsfa"
    shutil.copytree(tiny_run, src)
    rounds = pd.read_parquet(src / "rounds.parquet")
    rounds["virtual_queue"] = [0.0, 0.4, 0.9, 0.3]
    rounds.to_parquet(src / "rounds.parquet")
    clients = pd.read_parquet(src / "clients.parquet")
    clients["sparsity"] = np.linspace(0, 0.5, len(clients))
    clients.to_parquet(src / "clients.parquet")
    summary = json.loads((src / "summary.json").read_text())
    summary["strategy"] = {"name": "tsfa", "rank": 4, "tsfa": {"latency_budget_s": 0.5, "v": 1.0,
                                                               "final_queue_s": 0.3}}
    (src / "summary.json").write_text(json.dumps(summary))
    index = write_report(src, tmp_path / "rep")
    assert "![TSFA online stage](tsfa.png)" in index.read_text()
    fig = plots.tsfa_rounds(rounds, clients, summary)
    queue = fig.axes[1].lines[0]
    assert queue.get_ydata().tolist() == [0.0, 0.4, 0.9, 0.3]
    budget = [line for line in fig.axes[0].lines if line.get_label().startswith("budget")]
    assert budget[0].get_ydata()[0] == 0.5


# --- sweeps --------------------------------------------------------------------------------------------------

def sweep_runs():
    rows = []
    for rank in (4, 8):
        for seed in (0, 1):
            t = rank + 0.1 * seed
            rows.append({"run_id": f"{rank}-{seed}", "lora.rank": rank, "seed": seed, "status": "done",
                         "total_time_s": t, "critical_path_time_s": t, "wall_time_s": 30 + seed,
                         "n_events": 100 * rank, "before.accuracy": 0.5, "before.loss": 10.81,
                         "after.loss": 10.81 + 0.001 * rank, "after.accuracy": 0.6 + 0.01 * seed})
    return pd.DataFrame(rows)


def test_only_outcome_metrics_that_vary_are_plotted_once():
    plotted, notes = outcome_metrics(sweep_runs())
    assert plotted == ["total_time_s", "after.accuracy", "after.loss"]
    assert "`critical_path_time_s` (equals `total_time_s` in every run)" in notes
    assert "`before.accuracy` (0.5 in every run)" in notes and "`before.loss` (10.81 in every run)" in notes
    assert not any("wall_time_s" in n or "n_events" in n for n in notes)  # never candidates


def test_failed_runs_are_marked_and_axes_have_no_offset():
    runs = sweep_runs()
    failed = pd.DataFrame([{"run_id": "bad", "lora.rank": 16, "seed": 0, "status": "failed"}])
    fig = plots.sweep_param(runs, "lora.rank", ["total_time_s", "after.loss"], failed=failed)
    for ax in fig.axes[:2]:
        crosses = [line for line in ax.lines if line.get_marker() == "x"]
        assert len(crosses) == 1 and crosses[0].get_xdata().tolist() == [16.0]
    fig.canvas.draw()
    assert fig.axes[1].yaxis.get_offset_text().get_text() == ""         # 10.814 reads as 10.814, not +1.081e1

