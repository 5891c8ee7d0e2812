"""write_report and ``cosim report``: the figures and index of a run and of a sweep, and bad folders."""

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from cosim.cli import main
from cosim.errors import CosimError
from cosim.analysis import wilson_interval, write_report

PNG = b"\x89PNG\r\n\x1a\n"
RUN_FIGURES = ["timeline.png", "event_durations.png", "loss_accuracy.png", "critical_path.png", "busy_time.png",
               "energy_per_device.png", "round_delay.png"]


def figures_in(index_md):
    """The images index.md embeds, in order: ``![title](file)``."""
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", index_md.read_text())


def assert_pngs(folder, names):
    for name in names:
        data = (folder / name).read_bytes()
        assert data[:8] == PNG and len(data) > 5000, name
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_run_report_writes_every_figure_and_an_index_that_embeds_them(tiny_run, tmp_path):
    index = write_report(tiny_run, tmp_path / "rep")
    assert index == tmp_path / "rep" / "index.md"
    assert figures_in(index) == RUN_FIGURES
    assert_pngs(tmp_path / "rep", RUN_FIGURES)
    text = index.read_text()
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert f"{summary['total_time_s']:.3f} s (4 rounds, 3 clients)" in text
    assert f"{summary['before']['accuracy']:.3f} -> {summary['after']['accuracy']:.3f}" in text
    lo, hi = wilson_interval(summary["after"]["accuracy"], summary["after"]["n"])
    assert f"(n={summary['after']['n']}, 95% CI {lo:.3f}-{hi:.3f})" in text       # the binomial error, said
    assert "first and last round" in text                                 # 4 rounds: not the whole run
    assert text.count("### ") == len(RUN_FIGURES)                         # one line per figure says what it shows


def test_default_output_folder_is_report_inside_the_run(tiny_run, tmp_path):
    import shutil

    src = tmp_path / "copy"
    shutil.copytree(tiny_run, src)
    assert write_report(src) == src / "report" / "index.md"
    assert_pngs(src / "report", RUN_FIGURES)


def test_unknown_event_kinds_are_drawn_and_listed(tiny_run, tmp_path):
    """A strategy's new kinds (here a made-up one on client 0) still plot, in a neutral colour."""
    import shutil

    from cosim.analysis.plots import KIND_COLORS, kind_colors

    src = tmp_path / "odd"
    shutil.copytree(tiny_run, src)
    events = pd.read_parquet(src / "events.parquet")
    odd = events["kind"] == "client_backward"
    events.loc[odd, "kind"] = "mystery_step"
    events.to_parquet(src / "events.parquet")
    write_report(src, tmp_path / "rep")
    assert_pngs(tmp_path / "rep", RUN_FIGURES)
    colors = kind_colors(["uplink", "mystery_step", "other"])
    assert colors["uplink"] == KIND_COLORS["uplink"]
    assert colors["mystery_step"] not in KIND_COLORS.values() and colors["other"] != colors["mystery_step"]


def test_a_crash_while_drawing_leaves_no_index(tiny_run, tmp_path, monkeypatch):
    from cosim.analysis import plots

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(plots, "busy_time", broken)
    with pytest.raises(RuntimeError, match="boom"):
        write_report(tiny_run, tmp_path / "rep")
    assert (tmp_path / "rep" / "timeline.png").is_file() and not (tmp_path / "rep" / "index.md").exists()


def test_sweep_report_plots_each_metric_against_each_parameter(tiny_sweep, tmp_path):
    index = write_report(tiny_sweep, tmp_path / "rep")
    assert figures_in(index) == ["sweep_clients.count.png"]               # seeds are averaged, not an axis
    assert_pngs(tmp_path / "rep", ["sweep_clients.count.png"])
    text = index.read_text()
    assert "| runs done | 2 |" in text
    runs = pd.read_parquet(tiny_sweep / "sweep.parquet")
    mean2 = runs.loc[runs["clients.count"] == 2, "total_time_s"].mean()
    assert f"| 2 | 1 | {mean2:.4g} |" in text                             # clients.count, runs, mean time


def _fake_sweep(folder, rows, params):
    """A sweep folder holding only its index (the report reads nothing else)."""
    from cosim.sweep.index import write_index, write_meta

    folder.mkdir()
    write_index(folder, rows, params)
    write_meta(folder, {"name": "fake", "params": params})
    return folder


def test_sweep_report_handles_text_parameters_failures_and_all_nan_metrics(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for policy in ("equal", "random", "resources_only"):
        for rank in (4, 8):
            for seed in (0, 1, 2):
                rows.append({"run_id": f"{policy}-{rank}-{seed}", "allocation.policy": policy, "lora.rank": rank,
                             "seed": seed, "status": "done", "total_time_s": rank + rng.random(),
                             "uplink_bytes": 1e6 * rank, "after.accuracy": 0.5 + 0.1 * rng.random()})
    rows.append({"run_id": "bad", "allocation.policy": "equal", "lora.rank": 16, "seed": 0, "status": "failed",
                 "error": "ValueError: nope"})
    src = _fake_sweep(tmp_path / "sweep", rows, ["allocation.policy", "lora.rank", "seed"])
    index = write_report(src, tmp_path / "rep")
    assert figures_in(index) == ["sweep_allocation.policy.png", "sweep_lora.rank.png"]
    assert_pngs(tmp_path / "rep", figures_in(index))
    text = index.read_text()
    assert "| runs failed | 1 |" in text and "| runs done | 18 |" in text
    plotted = re.search(r"Metrics plotted: (.*)\n", text).group(1)
    assert plotted == "`total_time_s`, `uplink_bytes`, `after.accuracy`"     # the all-NaN ones are left out


def test_sweep_with_no_finished_run_gets_an_index_without_figures(tmp_path):
    rows = [{"run_id": "a", "lora.rank": 4, "status": "failed", "error": "x"}]
    index = write_report(_fake_sweep(tmp_path / "s", rows, ["lora.rank"]), tmp_path / "rep")
    assert figures_in(index) == [] and "No finished run yet" in index.read_text()


# --- the command line -------------------------------------------------------------------------------

def test_cosim_report_writes_and_says_where(tiny_run, tmp_path, capsys):
    assert main(["report", str(tiny_run), "--out", str(tmp_path / "rep")]) == 0
    assert f"wrote {tmp_path / 'rep' / 'index.md'}" in capsys.readouterr().out
    assert_pngs(tmp_path / "rep", RUN_FIGURES)


def test_cosim_report_on_a_folder_that_is_neither_exits_2_with_one_message(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    proc = subprocess.run([sys.executable, "-m", "cosim", "report", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        f"cosim: error: {tmp_path}: not a cosim run or sweep folder (expected a run folder with summary.json "
        "(`cosim run`) or a sweep folder with sweep.parquet (`cosim sweep`))"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]     # nothing written
    with pytest.raises(CosimError, match="no such folder"):
        write_report(tmp_path / "missing")


def test_importing_cosim_and_its_analysis_does_not_import_matplotlib():
    code = ("import sys, cosim, cosim.cli, cosim.analysis; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"



def test_zipped_parameters_share_one_axis(tmp_path):
    """As in scenarios/sweep_example.yaml: clients.count zipped with a list-valued FLOP/s, crossed with rank."""
    rows = []
    for count, flops in ((2, [1e12, 2e12]), (4, [0.5e12, 1e12, 1.5e12, 2e12])):
        for rank in (4, 8):
            for seed in (0, 1):
                rows.append({"run_id": f"{count}-{rank}-{seed}", "clients.count": count,
                             "compute.client_flops_per_s": flops, "lora.rank": rank, "seed": seed, "status": "done",
                             "total_time_s": 5.0 * count + seed, "uplink_bytes": 1e7 * count})
    params = ["clients.count", "compute.client_flops_per_s", "lora.rank", "seed"]
    index = write_report(_fake_sweep(tmp_path / "s", rows, params), tmp_path / "rep")
    assert figures_in(index) == ["sweep_clients.count.png", "sweep_lora.rank.png"]
    text = index.read_text()
    assert "against `clients.count`, which varies together with `compute.client_flops_per_s`. " \
           "One line per value of `lora.rank`:" in text
    assert "against `lora.rank`. One line per value of `clients.count`:" in text
    assert "| 4 | [5e+11, 1e+12, 1.5e+12, 2e+12] | 8 | 2 | 20.5 |" in text       # mean of seeds 0, 1: 20 and 21 s


def test_a_damaged_run_folder_is_a_user_error(tmp_path):
    (tmp_path / "summary.json").write_text("{}")                  # looks like a run, has no tables
    with pytest.raises(CosimError, match=f"{tmp_path}: cannot read the run"):
        write_report(tmp_path)
