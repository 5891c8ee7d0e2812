"""``cosim sweep``: expansion, validation, the local engine (resume, failures, interrupts), ``load_sweep``."""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cosim.cli import main
from cosim.errors import ScenarioError
from cosim.output import write_run
from cosim.scenario import dump_scenario
from cosim.scenario.load import apply_overrides
from cosim.sweep import expand_runs, points, read_sweep, run_sweep, sweep_from_dict
from cosim.analysis import load_sweep

QUICKSTART = Path(__file__).resolve().parents[2] / "scenarios" / "quickstart.yaml"
TINY = {
    "model.name": "tiny-llama", "split.cut_layer": 2, "data.test_size": 8, "data.max_train": 50,
    "training.seq_len": 32, "training.rounds": 1, "training.local_iterations": 1, "clients.count": 2,
    "compute.client_flops_per_s": 1e12,
}


def write_sweep(folder: Path, body: dict) -> Path:
    """A tiny base scenario next to a sweep file holding ``body`` (base: tiny.yaml)."""
    raw, problems = apply_overrides(yaml.safe_load(QUICKSTART.read_text()), TINY.items())
    assert not problems
    (folder / "tiny.yaml").write_text(yaml.safe_dump(raw))
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "base": "tiny.yaml", **body}, sort_keys=False))
    return path


# --- expansion -------------------------------------------------------------------------------------

def test_runs_are_cases_x_grid_x_zip_x_seeds(tmp_path):
    path = write_sweep(tmp_path, {
        "grid": {"lora.rank": [2, 4, 8], "channel.n_subchannels": [10, 20]},
        "zip": {"training.lr": [1e-3, 2e-3], "lora.alpha": [8, 16]},
        "cases": [{"split.cut_layer": 1}, {"split.cut_layer": 2, "training.batch_size": 2}],
        "seeds": [0, 1, 2],
    })
    sweep = read_sweep(path)
    pts = points(sweep)
    assert len(pts) == 2 * (3 * 2) * 2 * 3
    assert pts[0] == {"split.cut_layer": 1, "lora.rank": 2, "channel.n_subchannels": 10, "training.lr": 1e-3,
                      "lora.alpha": 8, "seed": 0}
    assert {(p["training.lr"], p["lora.alpha"]) for p in pts} == {(1e-3, 8), (2e-3, 16)}   # zipped, not crossed
    runs = expand_runs(sweep)
    ids = [r.run_id for r in runs]
    assert len(set(ids)) == len(ids) == 72 and all(len(i) == 12 for i in ids)
    assert ids == [r.run_id for r in expand_runs(read_sweep(path))]            # stable
    r = runs[-1]
    assert r.scenario.split.cut_layer == 2 and r.scenario.training.batch_size == 2 and r.scenario.seed == 2
    assert r.scenario.lora.rank == 8 and r.scenario.model.name == "tiny-llama"


def test_the_run_id_depends_only_on_the_resolved_scenario(tmp_path):
    # lora.rank=8 is the quickstart's own value: the same scenario as leaving it out
    a = expand_runs(read_sweep(write_sweep(tmp_path, {"cases": [{"lora.rank": 8}, {"lora.rank": 4}]})))
    b = expand_runs(read_sweep(write_sweep(tmp_path, {"grid": {"lora.rank": [4]}})))
    assert a[1].run_id == b[0].run_id != a[0].run_id


def test_the_example_sweep_is_valid():
    runs = expand_runs(read_sweep(QUICKSTART.parent / "sweep_example.yaml"))
    assert len(runs) == 8 and {r.scenario.clients.count for r in runs} == {2, 4}


def test_index_columns_holding_lists_or_mixed_types_are_written_as_text(tmp_path):
    from cosim.sweep.index import write_index

    rows = [{"run_id": "a", "x": [1.0, 2.0], "y": 1, "status": "done"}, {"run_id": "b", "x": 3, "y": "s"}]
    write_index(tmp_path, rows, ["x", "y"])
    index = pd.read_parquet(tmp_path / "sweep.parquet")
    assert list(index.x) == ["[1.0, 2.0]", "3"] and list(index.y) == ["1", "s"]
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.parquet"]        # no temporary file left


# --- validation ------------------------------------------------------------------------------------

def test_sweep_file_problems_are_reported_together(tmp_path):
    with pytest.raises(ScenarioError) as err:
        sweep_from_dict({"base": "nope.yaml", "grid": {"lora.rank": 4, "a..b": [1]},
                         "zip": {"lora.alpha": [1, 2], "training.lr": [1e-3]}, "seeds": [0, 0], "typo": 1},
                        source="s.yaml", folder=tmp_path)
    text = "\n".join(err.value.problems)
    for expected in ("s.yaml: typo: unknown key (valid keys: base, cases, grid, name, seeds, slurm, zip)",
                     "s.yaml: base: no such file", "s.yaml: grid.lora.rank: expected a non-empty list",
                     "s.yaml: grid.a..b: expected a dotted key",
                     "s.yaml: zip: expected lists of equal length (got lora.alpha: 2, training.lr: 1)",
                     "s.yaml: seeds: expected distinct seeds"):
        assert expected in text
    assert len(err.value.problems) == 6


def test_scenario_problems_name_the_run_and_key_and_nothing_runs(tmp_path, capsys):
    path = write_sweep(tmp_path, {"grid": {"lora.rank": [4, 0]}, "cases": [{"lora.rnk": 3}, {"clients.count": 3}]})
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert f"cosim: error: {path}: run 0 (lora.rnk=3 lora.rank=4): lora.rnk: unknown key" in err[0]
    assert any(f"{path}: run 1 (lora.rnk=3 lora.rank=0): lora.rank: expected a value > 0 (got 0)" in e for e in err)
    assert any(f"{path}: run 3 (clients.count=3 lora.rank=0): lora.rank:" in e for e in err)
    assert len(err) == 4 and not out.exists()


# --- the local engine ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    """Three tiny runs and one that fails at run time (1 training example for 2 clients), on 2 workers.

    (A cut beyond the model's blocks no longer gets that far: validation refuses it before the sweep starts.)
    """
    folder = tmp_path_factory.mktemp("sweep")
    path = write_sweep(folder, {"cases": [
        {"lora.rank": 2, "seed": 0}, {"lora.rank": 2, "seed": 1}, {"lora.rank": 4, "seed": 0},
        {"data.max_train": 1}]})
    out = folder / "out"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "2", "--quiet"]) == 1   # one failed
    return path, out


def test_every_run_has_one_row_and_the_failure_is_recorded(tiny_sweep):
    path, out = tiny_sweep
    index = pd.read_parquet(out / "sweep.parquet")
    runs = expand_runs(read_sweep(path))
    assert list(index.run_id) == [r.run_id for r in runs]
    assert list(index.status) == ["done"] * 3 + ["failed"]
    assert list(index["lora.rank"].iloc[:3]) == [2, 2, 4] and list(index["seed"].iloc[:3]) == [0, 1, 0]
    bad = index.iloc[3]
    assert "exceeds the 1 examples to share" in bad.error and pd.isna(bad.total_time_s)
    assert (out / "failed" / f"{bad.run_id}.txt").is_file() and not (out / "runs" / bad.run_id).exists()
    done = index.iloc[:3]
    assert (done.total_time_s > 0).all() and done["after.accuracy"].notna().all() and done.error.isna().all()
    for row in done.itertuples():
        summary = json.loads((out / "runs" / row.run_id / "summary.json").read_text())
        assert summary["total_time_s"] == row.total_time_s and summary["uplink_bytes"] == row.uplink_bytes


def test_running_again_runs_only_what_is_missing(tiny_sweep, capsys):
    path, out = tiny_sweep
    summaries = sorted((out / "runs").glob("*/summary.json"))
    mtimes = [p.stat().st_mtime_ns for p in summaries]
    capsys.readouterr()
    assert main(["sweep", str(path), "--out", str(out), "--quiet"]) == 1      # the failed one is retried
    assert "4 runs: 3 already done, 0 ran, 1 failed" in capsys.readouterr().out
    assert [p.stat().st_mtime_ns for p in summaries] == mtimes
    assert main(["sweep", str(path), "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(" done " in line for line in lines) == 3 and "t: 4 runs, 3 done, 1 to run" in lines[-1]


def test_an_interrupted_run_is_the_only_one_resumed(tiny_sweep, tmp_path):
    path, out = tiny_sweep
    runs = expand_runs(read_sweep(path))
    victim = runs[1].run_id
    (out / "runs" / victim / "summary.json").unlink()                      # killed before its summary
    (out / "runs" / f".{runs[2].run_id}.partial-x").mkdir()                # a killed run's temporary folder
    others = {r.run_id: (out / "runs" / r.run_id / "summary.json").stat().st_mtime_ns
              for r in runs[:3] if r.run_id != victim}
    res = run_sweep(runs, out, workers=1, progress=False)
    assert (res.skipped, res.done, res.failed) == (2, 1, 1)                 # and the failed one retried
    assert (out / "runs" / victim / "summary.json").is_file()
    assert {k: (out / "runs" / k / "summary.json").stat().st_mtime_ns for k in others} == others
    assert not list((out / "runs").glob(".*"))


def fake_run(scenario, out):
    """Stands in for run_scenario: no torch; the rank 3 run is 'interrupted by Ctrl-C'."""
    if scenario.lora.rank == 3:
        raise KeyboardInterrupt
    summary = {"total_time_s": float(scenario.lora.rank), "after": {"accuracy": 0.5, "loss": 1.0, "n": 8}}
    frame = pd.DataFrame({"round": [0], "kind": ["uplink"]})
    write_run(Path(out), events=frame, rounds=frame[["round"]], summary=summary, scenario_yaml=dump_scenario(scenario))
    return summary


def test_ctrl_c_keeps_the_finished_runs(tmp_path):
    runs = expand_runs(read_sweep(write_sweep(tmp_path, {"grid": {"lora.rank": [1, 2, 3, 4]}})))
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(runs, out, progress=False, run=fake_run)
    index = pd.read_parquet(out / "sweep.parquet")
    assert list(index.status) == ["done", "done", "pending", "pending"]
    res = run_sweep(runs[:2] + runs[3:], out, progress=False, run=fake_run)
    assert (res.skipped, res.done) == (2, 1)


def test_load_sweep_joins_the_index_with_summaries_and_traces(tiny_sweep):
    _, out = tiny_sweep
    runs, events, rounds, clients = load_sweep(out)
    assert len(runs) == 4 and {"after.accuracy", "phase_time_s.uplink", "status", "lora.rank"} <= set(runs.columns)
    assert runs.loc[runs.status == "done", "clients"].eq(2).all()
    done = set(runs.run_id[runs.status == "done"])
    assert set(events.run_id) == done == set(rounds.run_id) == set(clients.run_id)
    assert len(clients) == 2 * len(rounds)                             # one row per round and client (2 clients)
    assert list(events.columns[:4]) == ["run_id", "lora.rank", "seed", "data.max_train"]
    per_run = events.groupby("run_id").t_end_s.max()
    assert per_run.to_dict() == pytest.approx(runs.set_index("run_id").total_time_s[list(done)].to_dict())
    assert (rounds.groupby("run_id").size() == 1).all()


def test_sweeps_plan_and_load_without_torch():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'transformers', 'peft'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import cosim.sweep, cosim.analysis.sweep\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
