"""``cosim sweep --engine dask|slurm``: the same runs and results as the local engine, failures,
Ctrl-C, a missing cluster extra, the ``slurm:`` section, and a sweep killed and started again."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from cosim.cli import main
from cosim.errors import CosimError, ScenarioError
from cosim.output import write_run
from cosim.scenario import dump_scenario
from cosim.sweep import SlurmSettings, expand_runs, is_done, read_sweep, run_sweep, sweep_from_dict
from test_sweep import write_sweep

SLURM_LOCAL = {"cluster": "local", "array_parallelism": 2, "time_min": 10}
# two real runs around one that fails at run time (1 training example cannot be shared by 2 clients)
CASES = [{"lora.rank": 2, "seed": 0}, {"data.max_train": 1}, {"lora.rank": 4, "seed": 1}]


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """The same sweep file run by the local engine (in process), dask (2 workers) and slurm (local)."""
    folder = tmp_path_factory.mktemp("engines")
    path = write_sweep(folder, {"cases": CASES, "slurm": SLURM_LOCAL})
    outs = {}
    for engine, flags in (("local", []), ("dask", ["--workers", "2"]), ("slurm", [])):
        outs[engine] = folder / engine
        code = main(["sweep", str(path), "--out", str(outs[engine]), "--engine", engine, "--quiet", *flags])
        assert code == 1, engine                                           # one run failed
    return path, outs


@pytest.mark.parametrize("engine", ["dask", "slurm"])
def test_cluster_engines_give_the_local_engines_runs_bit_for_bit(sweeps, engine):
    path, outs = sweeps
    runs = expand_runs(read_sweep(path))
    local, other = (pd.read_parquet(outs[e] / "sweep.parquet") for e in ("local", engine))
    assert list(other.run_id) == [r.run_id for r in runs] == list(local.run_id)
    assert list(other.status) == ["done", "failed", "done"] == list(local.status)
    for rid in other.run_id[other.status == "done"]:
        a, b = (outs[e] / "runs" / rid / "events.parquet" for e in ("local", engine))
        assert a.read_bytes() == b.read_bytes()
        assert (outs[engine] / "runs" / rid / "scenario.yaml").read_text() == dump_scenario(
            next(r.scenario for r in runs if r.run_id == rid))
    metrics = ["total_time_s", "uplink_bytes", "final_train_loss", "after.accuracy", "n_events"]
    pd.testing.assert_frame_equal(other.loc[other.status == "done", metrics], local.loc[local.status == "done", metrics])


@pytest.mark.parametrize("engine", ["dask", "slurm"])
def test_a_failed_run_is_recorded_and_the_others_still_run(sweeps, engine):
    _, outs = sweeps
    index = pd.read_parquet(outs[engine] / "sweep.parquet")
    bad = index.iloc[1]
    assert bad.status == "failed" and "examples to share" in bad.error and "\n" not in bad.error.strip()
    trace = (outs[engine] / "failed" / f"{bad.run_id}.txt").read_text()
    assert "Traceback" in trace and "examples to share" in trace
    assert not (outs[engine] / "runs" / bad.run_id).exists()
    assert sorted(p.name for p in (outs[engine] / "runs").iterdir()) == sorted(index.run_id[index.status == "done"])


def test_the_slurm_engine_keeps_submitits_logs_in_the_sweep_folder(sweeps):
    _, outs = sweeps
    logs = outs["slurm"] / "slurm_logs"
    assert len(list(logs.glob("*_result.pkl"))) == 3 and len(list(logs.glob("*_log.out"))) == 3


def test_running_again_on_another_engine_runs_only_the_failed_run(sweeps, capsys):
    path, outs = sweeps
    capsys.readouterr()
    assert main(["sweep", str(path), "--out", str(outs["slurm"]), "--engine", "local", "--quiet"]) == 1
    assert "3 runs: 2 already done, 0 ran, 1 failed" in capsys.readouterr().out


# --- engines with a stand-in run (no torch): fast enough to test scheduling --------------------------

def quick_run(scenario, out):
    """Stands in for run_scenario: sleeps ``rank**2 / 20`` s (0.05 s to 1.8 s); rank 3 fails."""
    t0 = time.time()
    time.sleep(scenario.lora.rank ** 2 / 20)
    if scenario.lora.rank == 3:
        raise ValueError("rank 3 is unlucky")
    summary = {"total_time_s": float(scenario.lora.rank), "pid": os.getpid(), "t0": t0, "t1": time.time()}
    frame = pd.DataFrame({"round": [0], "kind": ["uplink"]})
    write_run(Path(out), events=frame, rounds=frame[["round"]], summary=summary, scenario_yaml=dump_scenario(scenario))
    return summary


@pytest.fixture
def quick_runs(tmp_path):
    return expand_runs(read_sweep(write_sweep(tmp_path, {"grid": {"lora.rank": [1, 2, 3, 4, 5, 6]}})))


def threads_run(scenario, out):
    """Stands in for run_scenario: reports how many threads this process's torch uses."""
    import torch

    summary = {"total_time_s": float(torch.get_num_threads())}
    frame = pd.DataFrame({"round": [0], "kind": ["uplink"]})
    write_run(Path(out), events=frame, rounds=frame[["round"]], summary=summary, scenario_yaml=dump_scenario(scenario))
    return summary


@pytest.mark.parametrize("engine", ["dask", "slurm"])
def test_parallel_runs_do_not_fight_over_cores(quick_runs, tmp_path, monkeypatch, engine):
    # The local engine leaves torch's threads to each run's runtime.threads (tests/cosim/test_threads.py).
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    res = run_sweep(quick_runs[:2], tmp_path / "out", engine=engine, workers=2, run=threads_run, progress=False,
                    slurm=SlurmSettings(cluster="local", cpus_per_task=1))
    assert res.done == 2
    threads = pd.read_parquet(tmp_path / "out" / "sweep.parquet").total_time_s
    # dask: its nanny's 1; slurm: cpus_per_task
    assert list(threads) == [1] * 2


def test_dask_reaches_a_running_scheduler_and_leaves_it_running(quick_runs, tmp_path):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        res = run_sweep(quick_runs, tmp_path / "out", engine="dask", scheduler=cluster.scheduler_address,
                        run=quick_run, progress=False)
        with Client(cluster) as client:
            assert len(client.scheduler_info()["workers"]) == 2               # still there, not closed by us
    assert (res.done, res.failed) == (5, 1)
    index = pd.read_parquet(tmp_path / "out" / "sweep.parquet")
    assert list(index.status) == ["done", "done", "failed", "done", "done", "done"]
    assert index.error[2] == "ValueError: rank 3 is unlucky"
    pids = {pd.read_json(tmp_path / "out" / "runs" / rid / "summary.json", typ="series")["pid"]
            for rid in index.run_id[index.status == "done"]}
    assert len(pids) == 2 and os.getpid() not in pids                      # both workers ran runs


def test_an_unreachable_scheduler_is_a_user_error(quick_runs, tmp_path):
    from cosim.sweep.book import SweepBook
    from cosim.sweep.dask_engine import DaskEngine

    engine = DaskEngine(scheduler="tcp://127.0.0.1:9", connect_timeout_s=1)
    with pytest.raises(CosimError, match=r"--scheduler tcp://127.0.0.1:9: cannot reach a Dask scheduler"):
        engine.execute(quick_runs, SweepBook(quick_runs, tmp_path / "out"), quick_run)


def interrupt_after_first(monkeypatch):
    """Ctrl-C in the submitting process right after the first run is recorded."""
    from cosim.sweep.book import SweepBook

    finish = SweepBook.finish

    def finish_then_interrupt(self, r, outcome):
        finish(self, r, outcome)
        raise KeyboardInterrupt

    monkeypatch.setattr(SweepBook, "finish", finish_then_interrupt)


@pytest.mark.parametrize("engine", ["dask", "slurm"])
def test_ctrl_c_cancels_what_has_not_finished_and_keeps_what_has(quick_runs, tmp_path, monkeypatch, engine):
    runs = [quick_runs[0], quick_runs[5], quick_runs[4]]                  # 0.05 s, then 1.8 s and 1.25 s
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))           # jobs unpickle quick_run from here
    interrupt_after_first(monkeypatch)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(runs, out, engine=engine, workers=1, run=quick_run, progress=False,
                  slurm=SlurmSettings(cluster="local", array_parallelism=3))
    index = pd.read_parquet(out / "sweep.parquet")
    # a cancelled task may still finish its run before its worker stops: it is on disk and counted done
    assert list(index.status) == ["done"] + ["done" if is_done(out, rid) else "pending" for rid in index.run_id[1:]]
    assert (index.status == "pending").any()
    kept = (out / "runs" / runs[0].run_id / "summary.json").stat().st_mtime_ns
    monkeypatch.undo()
    res = run_sweep(runs, out, run=quick_run, progress=False)
    assert res.skipped == (index.status == "done").sum() and res.skipped + res.done == 3 and res.failed == 0
    assert (out / "runs" / runs[0].run_id / "summary.json").stat().st_mtime_ns == kept


def test_runs_finished_while_stopping_are_counted_done(quick_runs, tmp_path):
    from cosim.sweep.book import SweepBook

    book = SweepBook(quick_runs[:3], tmp_path / "out")
    quick_run(quick_runs[1].scenario, book.target(quick_runs[1]))         # finished, never reported
    book.adopt_finished()
    index = pd.read_parquet(tmp_path / "out" / "sweep.parquet")
    assert list(index.status) == ["pending", "done", "pending"] and index.total_time_s[1] == 2.0
    assert book.outcome().done == 1


def max_overlap(spans: list[tuple[float, float]]) -> int:
    """The most intervals open at one time (ends before starts at equal times)."""
    edges = sorted([(t1, -1) for _, t1 in spans] + [(t0, 1) for t0, _ in spans])
    open_, most = 0, 0
    for _, step in edges:
        open_ += step
        most = max(most, open_)
    return most


def test_the_slurm_cap_holds_on_the_local_executor(quick_runs, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    runs = [quick_runs[i] for i in (5, 4, 3, 1)]                            # 1.8, 1.25, 0.8, 0.2 s
    res = run_sweep(runs, tmp_path / "out", engine="slurm", workers=4, run=quick_run, progress=False,
                    slurm=SlurmSettings(cluster="local", array_parallelism=2))
    assert (res.done, res.failed) == (4, 0)
    summaries = [pd.read_json(tmp_path / "out" / "runs" / r.run_id / "summary.json", typ="series") for r in runs]
    assert max_overlap([(s.t0, s.t1) for s in summaries]) == 2                # 2 at once, never 3 or 4
    assert len({s.pid for s in summaries}) == 4                                # one job (process) per run
    assert len(list((tmp_path / "out" / "slurm_logs").glob("*_result.pkl"))) == 4


# --- the slurm: section and submitit's sbatch file ------------------------------------------------

def test_slurm_section_problems_are_reported_together(tmp_path):
    (tmp_path / "b.yaml").write_text("{}\n")
    with pytest.raises(ScenarioError) as err:
        sweep_from_dict({"base": "b.yaml", "slurm": {"cluster": "pbs", "partition": "", "time_min": 0,
                                                      "cpus_per_task": 1.5, "gpus_per_node": -1, "mem_gb": 0,
                                                      "array_parallelism": True, "qos": "high"}},
                        source="s.yaml", folder=tmp_path)
    assert err.value.problems == [
        "s.yaml: slurm.cluster: expected one of slurm, local, debug (got 'pbs')",
        "s.yaml: slurm.partition: expected a partition name (got '')",
        "s.yaml: slurm.time_min: expected an integer > 0 (got 0)",
        "s.yaml: slurm.cpus_per_task: expected an integer > 0 (got 1.5)",
        "s.yaml: slurm.gpus_per_node: expected an integer >= 0 (got -1)",
        "s.yaml: slurm.mem_gb: expected a number of GB > 0 (got 0)",
        "s.yaml: slurm.array_parallelism: expected an integer > 0 (got True)",
        "s.yaml: slurm.qos: unknown key (valid keys: array_parallelism, cluster, cpus_per_task, gpus_per_node, "
        "mem_gb, partition, time_min)",
    ]
    sweep = sweep_from_dict({"base": "b.yaml", "slurm": {"partition": "gpu", "mem_gb": 7.5}}, source="s.yaml",
                            folder=tmp_path)
    assert sweep.slurm == SlurmSettings(cluster="slurm", partition="gpu", mem_gb=7.5)
    assert sweep_from_dict({"base": "b.yaml"}, source="s.yaml", folder=tmp_path).slurm is None


def test_the_sbatch_file_asks_for_what_the_slurm_section_says(quick_runs, tmp_path, monkeypatch):
    """A fake ``srun``/``sbatch`` on PATH: submitit writes the real array script, we read it."""
    from cosim.sweep.book import SweepBook
    from cosim.sweep.slurm_engine import SlurmEngine

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\ncp "$1" {tmp_path}/submitted.sh\necho "Submitted batch job 4242"\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    settings = SlurmSettings(partition="gpu", time_min=30, cpus_per_task=4, gpus_per_node=1, mem_gb=8,
                             array_parallelism=2)
    engine = SlurmEngine(settings=settings, workers=1, job_name="cosim-t")
    book = SweepBook(quick_runs, tmp_path / "out")
    jobs = engine.submit_array(engine.executor(book), quick_runs[:3], book, quick_run)
    assert [j.job_id for j in jobs] == ["4242_0", "4242_1", "4242_2"]
    assert jobs[2].submission().args == (quick_run, quick_runs[2].scenario, book.target(quick_runs[2]), 4)
    lines = set((tmp_path / "submitted.sh").read_text().splitlines())
    assert {"#SBATCH --array=0-2%2", "#SBATCH --partition=gpu", "#SBATCH --time=30", "#SBATCH --cpus-per-task=4",
            "#SBATCH --gpus-per-node=1", "#SBATCH --mem=8GB", "#SBATCH --job-name=cosim-t"} <= lines
    assert str(tmp_path / "out" / "slurm_logs") in (tmp_path / "submitted.sh").read_text()
    (bin_dir / "sbatch").write_text("#!/bin/sh\necho 'sbatch: error: invalid partition specified: gpu' >&2\nexit 1\n")
    with pytest.raises(CosimError, match="sbatch refused the job array: sbatch: error: invalid partition"):
        engine.submit_array(engine.executor(book), quick_runs[:3], book, quick_run)


# --- user errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("engine, module", [("dask", "distributed"), ("slurm", "submitit")])
def test_a_missing_cluster_extra_is_one_clear_error(tmp_path, capsys, monkeypatch, engine, module):
    monkeypatch.setitem(sys.modules, module, None)                         # import fails as if not installed
    path = write_sweep(tmp_path, {"grid": {"lora.rank": [2]}})
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--engine", engine]) == 2
    err = capsys.readouterr().err
    assert err == f"cosim: error: --engine {engine}: needs the cluster extra: pip install 'cosim[cluster]'\n"
    assert not (tmp_path / "out").exists()


def test_scheduler_is_only_for_dask_and_slurm_needs_slurm(tmp_path, capsys, monkeypatch):
    import submitit

    path = write_sweep(tmp_path, {"grid": {"lora.rank": [2]}})
    assert main(["sweep", str(path), "--engine", "local", "--scheduler", "tcp://h:8786"]) == 2
    assert "--scheduler: only valid with --engine dask (got --engine local)" in capsys.readouterr().err
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: -1))   # no srun here
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--engine", "slurm"]) == 2
    assert "--engine slurm: no Slurm on this machine (srun not found)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --- killed and started again ----------------------------------------------------------------------

@pytest.mark.parametrize("engine", ["local", "dask"])
def test_a_killed_sweep_started_again_has_every_run_once(tmp_path, engine):
    path = write_sweep(tmp_path, {"grid": {"lora.rank": [2, 4]}, "seeds": [0, 1, 2, 3]})
    runs = expand_runs(read_sweep(path))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "cosim", "sweep", str(path), "--out", str(out), "--workers", "2", "--quiet",
           "--engine", engine]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while len(list(out.glob("runs/*/summary.json"))) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "the sweep ended before it was killed"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)                                 # the sweep and its workers
        proc.wait()
    before = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("runs/*/summary.json")}
    assert 2 <= len(before) < len(runs)
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert f"{len(runs)} runs: {len(before)} already done, {len(runs) - len(before)} ran, 0 failed" in again.stdout
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(r.run_id for r in runs)   # nothing else
    assert {k: (out / "runs" / k / "summary.json").stat().st_mtime_ns for k in before} == before
    index = pd.read_parquet(out / "sweep.parquet")
    assert list(index.run_id) == [r.run_id for r in runs] and (index.status == "done").all()
    assert all((out / "runs" / r.run_id / "events.parquet").is_file() for r in runs)
