"""Checkpoints: a run killed (for real, kill -9) and started again gives the uninterrupted run's events."""

import copy
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from cosim.errors import ScenarioError
from cosim.run import run_scenario
from cosim.scenario import load_scenario
from cosim.workloads.reconfigurable import ReconfigurableSplitLoRAWorkload

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"
TINY = ["model.name=tiny-llama", "split.cut_layer=2", "clients.count=3", "training.rounds=4",
        "training.local_iterations=2", "training.seq_len=32", "data.test_size=8", "data.max_train=60",
        "compute.client_flops_per_s=[0.5e9, 1e9, 2e9]", "training.eval_every=1"]


def frames(out: Path):
    return [pd.read_parquet(out / f) for f in ("events.parquet", "rounds.parquet", "clients.parquet")]


class Killed(Exception):
    pass


def test_resumed_in_process_equals_uninterrupted_adapters_included(tmp_path):
    sc = load_scenario(QUICKSTART, overrides=[*TINY, "checkpoint.every_rounds=1"])
    whole = ReconfigurableSplitLoRAWorkload.from_scenario(sc)
    run_scenario(sc, tmp_path / "whole", workload=whole)
    assert not (tmp_path / "whole" / "checkpoint").exists()          # the finished run keeps no checkpoint

    def kill_in_round_2(r, now):
        if r == 2:
            raise Killed

    first = ReconfigurableSplitLoRAWorkload.from_scenario(sc)
    with pytest.raises(Killed):
        run_scenario(sc, tmp_path / "cut", workload=first, on_round=kill_in_round_2)
    assert (tmp_path / "cut" / "checkpoint" / "state.pt").is_file()
    assert not (tmp_path / "cut" / "summary.json").exists()
    again = ReconfigurableSplitLoRAWorkload.from_scenario(sc)
    summary = run_scenario(sc, tmp_path / "cut", workload=again)
    assert any("checkpoint after round 1" in note for note in summary["notes"])
    for a, b in zip(frames(tmp_path / "whole"), frames(tmp_path / "cut")):
        pd.testing.assert_frame_equal(a, b)
    g1, g2 = whole.global_state(), again.global_state()
    assert g1.keys() == g2.keys() and all(torch.equal(g1[k], g2[k]) for k in g1)


ASYNC = {
    "fedasync-split-offline": ["aggregation.mode=fedasync", "availability.model=on_off",
                               "availability.mean_on_s=0.5", "availability.mean_off_s=0.1"],
    "fedbuff-fedlora": ["strategy.name=fedlora", "aggregation.mode=fedbuff", "aggregation.buffer_size=2"],
    "fedasync-sfl_v2": ["strategy.name=sfl_v2", "aggregation.mode=fedasync"],
}


def workload_of(sc):
    from cosim.devices import client_flops_per_s
    from cosim.radio import build_radio
    from cosim.strategies import get_strategy

    return get_strategy(sc.strategy.name).build_workload(sc, radios=build_radio(sc),
                                                         client_flops_per_s=client_flops_per_s(sc), stage=print)


@pytest.mark.parametrize("option", ASYNC.values(), ids=ASYNC)
def test_an_asynchronous_run_goes_on_from_a_checkpoint_taken_while_its_clients_work(tmp_path, option):
    sc = load_scenario(QUICKSTART, overrides=[*TINY, "training.rounds=6", "checkpoint.every_rounds=1", *option])
    whole = workload_of(sc)
    run_scenario(sc, tmp_path / "whole", workload=whole)

    def kill_at_update_3(r, now):
        if r == 3:
            raise Killed

    with pytest.raises(Killed):
        run_scenario(sc, tmp_path / "cut", workload=workload_of(sc), on_round=kill_at_update_3)
    state = torch.load(tmp_path / "cut" / "checkpoint" / "state.pt", weights_only=True)
    assert state["rebuilt"] and state["next_round"] == 3
    # taken in the middle of the other clients' work: steps, uploads or transfers were in flight then
    events = pd.read_parquet(tmp_path / "whole" / "events.parquet")
    assert ((events["t_start_s"] < state["now_s"]) & (events["t_end_s"] > state["now_s"])).any()
    again = workload_of(sc)
    summary = run_scenario(sc, tmp_path / "cut", workload=again)
    assert "went on from a checkpoint after server update 2" in summary["notes"]
    for a, b in zip(frames(tmp_path / "whole"), frames(tmp_path / "cut")):
        pd.testing.assert_frame_equal(a, b)
    g1, g2 = whole.global_state(), again.global_state()
    assert g1.keys() == g2.keys() and all(torch.equal(g1[k], g2[k]) for k in g1)


def test_a_rebuilt_run_that_would_diverge_from_its_log_stops(tmp_path):
    from cosim.worklog import LogDiverged

    sc = load_scenario(QUICKSTART, overrides=[*TINY, "checkpoint.every_rounds=1", "aggregation.mode=fedasync"])

    def kill(r, now):
        if r == 2:
            raise Killed

    with pytest.raises(Killed):
        run_scenario(sc, tmp_path / "x", on_round=kill)
    path = tmp_path / "x" / "checkpoint" / "state.pt"
    state = torch.load(path, weights_only=True)
    log = copy.deepcopy(state["log"])
    next(e for e in log if e[:2] == ["call", "client_forward"])[2] = [99]   # asked for another client
    for tampered, match in (({**state, "log": log}, "diverged from its checkpoint at log entry"),
                            ({**state, "now_s": state["now_s"] + 1e-3}, "rebuilt run stands at")):
        torch.save(tampered, path)
        with pytest.raises(LogDiverged, match=match):
            run_scenario(sc, tmp_path / "x")


def test_a_checkpoint_of_another_scenario_is_refused(tmp_path):
    sc = load_scenario(QUICKSTART, overrides=[*TINY, "checkpoint.every_rounds=1"])

    def kill(r, now):
        if r == 1:
            raise Killed

    with pytest.raises(Killed):
        run_scenario(sc, tmp_path / "x", on_round=kill)
    other = load_scenario(QUICKSTART, overrides=[*TINY, "checkpoint.every_rounds=1", "seed=5"])
    with pytest.raises(ScenarioError, match="written by another scenario"):
        run_scenario(other, tmp_path / "x")
    # the interval is not part of the run: the same scenario without checkpoints goes on from it
    same = load_scenario(QUICKSTART, overrides=TINY)
    assert run_scenario(same, tmp_path / "x")["notes"][0].startswith("went on from a checkpoint")


def run_cli(out: Path, overrides: list[str], *, kill_after_checkpoint_s: float | None = None) -> None:
    """``cosim run`` in its own process; with ``kill_after_checkpoint_s``, SIGKILL it that long after a new
    checkpoint appeared (or let it end if it ends first)."""
    cmd = [sys.executable, "-m", "cosim", "run", str(QUICKSTART), "--out", str(out), "--quiet",
           *[a for o in overrides for a in ("--set", o)]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    state = out / "checkpoint" / "state.pt"
    before = state.stat().st_mtime_ns if state.exists() else 0
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if kill_after_checkpoint_s is None:
        assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()
        return
    while proc.poll() is None and not (state.exists() and state.stat().st_mtime_ns != before):
        time.sleep(0.05)
    time.sleep(kill_after_checkpoint_s)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)


@pytest.mark.parametrize("option", [
    [],                                                                      # SFL-V1
    ["strategy.name=fedlora"],                                               # federated LoRA, no split
    ["aggregation.mode=deadline", "aggregation.deadline_s=0.15"],            # late clients cut
    ["aggregation.mode=fedasync", "training.rounds=24"],                      # no barrier: SFL-V1, FedAsync
    ["strategy.name=topk", "aggregation.mode=fedbuff", "aggregation.buffer_size=2",
     "training.rounds=12"],                                                  # FedBuff, top-k uploads
])
def test_kill_9_at_random_points_and_start_again(tmp_path, option):
    overrides = [*TINY, "training.rounds=6", "checkpoint.every_rounds=1", *option]
    run_cli(tmp_path / "whole", overrides)
    out, rng = tmp_path / "killed", random.Random(len(option))
    for _ in range(3):  # killed three times at a random point after a new checkpoint
        run_cli(out, overrides, kill_after_checkpoint_s=rng.uniform(0.0, 0.4))
    if not (out / "summary.json").exists():
        run_cli(out, overrides)
    summary = (out / "summary.json").read_text()
    assert "went on from a checkpoint" in summary                            # killed and resumed, for real
    for a, b in zip(frames(tmp_path / "whole"), frames(out)):
        pd.testing.assert_frame_equal(a, b)


def test_a_replay_computed_in_one_go_goes_on_from_its_checkpoint(tmp_path):
    profile = ROOT / "experiments" / "fedsllm" / "smollm2_profile.json"
    sc = load_scenario(QUICKSTART, overrides=["workload.kind=replay", f"workload.profile={profile}",
                                              "clients.count=20", "compute.client_flops_per_s=1e12", "training.rounds=5",
                                              "checkpoint.every_rounds=2"])
    run_scenario(sc, tmp_path / "whole")

    def kill(r, now):
        if r == 3:
            raise Killed

    with pytest.raises(Killed):
        run_scenario(sc, tmp_path / "cut", on_round=kill)
    summary = run_scenario(sc, tmp_path / "cut")
    assert "went on from a checkpoint after round 1" in summary["notes"]
    for a, b in zip(frames(tmp_path / "whole"), frames(tmp_path / "cut")):
        pd.testing.assert_frame_equal(a, b)


def test_cli_resume_and_checkpoint_every(tmp_path, capsys):
    from cosim.cli import main

    sc = load_scenario(QUICKSTART, overrides=TINY)

    def kill(r, now):
        if r == 2:
            raise Killed

    with pytest.raises(Killed):
        run_scenario(dataclasses.replace(sc, checkpoint=dataclasses.replace(sc.checkpoint, every_rounds=1)),
                     tmp_path / "x", on_round=kill)
    assert main(["run", "--resume", str(tmp_path / "x"), "--quiet"]) == 0
    summary = (tmp_path / "x" / "summary.json").read_text()
    assert "went on from a checkpoint after round 1" in summary
    assert main(["run", "--resume", str(tmp_path / "nothing"), "--quiet"]) == 2
    assert "no checkpoint there" in capsys.readouterr().err
    assert main(["run", str(QUICKSTART), "--resume", str(tmp_path / "x")]) == 2
    assert main(["run", "--quiet"]) == 2
    assert main(["run", str(QUICKSTART), "--checkpoint-every", "-1", "--out", str(tmp_path / "y")]) == 2


def test_a_diverging_run_stops_naming_where_and_keeps_its_trace(tmp_path, capsys):
    from cosim.cli import main

    out = tmp_path / "nan"
    code = main(["run", str(QUICKSTART), "--out", str(out), "--quiet",
                 *[a for o in [*TINY, "training.lr=1e30"] for a in ("--set", o)]])
    err = capsys.readouterr().err
    assert code == 1 and "run stopped:" in err and "Traceback" not in err
    assert "round 0, client" in err and ("not finite" in err or "loss is" in err)
    assert (out / "incomplete.json").is_file() and not (out / "summary.json").exists()
    about = json.loads((out / "incomplete.json").read_text())
    events = pd.read_parquet(out / "events.parquet")
    assert about["where"]["round"] == int(events["round"].max())              # the trace up to the stop
    assert about["rounds_done"] == len(pd.read_parquet(out / "rounds.parquet"))


def test_a_sweep_killed_in_a_run_goes_on_from_the_runs_checkpoint(tmp_path):
    """kill -9 of a whole sweep (one worker) in a run's later rounds; started again, that run resumes."""
    import yaml

    from cosim.scenario.load import apply_overrides, parse_override
    from cosim.sweep import expand_runs, read_sweep

    raw, problems = apply_overrides(yaml.safe_load(QUICKSTART.read_text()),
                                    [parse_override(o) for o in [*TINY, "training.rounds=6"]])
    assert not problems
    raw["checkpoint"] = {"every_rounds": 1}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(raw))
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "k", "base": "base.yaml", "seeds": [0, 1]}))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "cosim", "sweep", str(path), "--out", str(out), "--workers", "1", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while not list(out.glob("runs/*/checkpoint/state.pt")):
            assert proc.poll() is None, "the sweep ended before a checkpoint"
            time.sleep(0.02)
    finally:  # at once: the run's first checkpoint is after round 0 of 6, a finished run keeps none
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    resumed = [p.parent.parent.name for p in out.glob("runs/*/checkpoint/state.pt")]
    assert resumed
    again = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    for rid in resumed:
        assert "went on from a checkpoint" in (out / "runs" / rid / "summary.json").read_text()
    # the resumed run's events are the uninterrupted run's
    run = next(r for r in expand_runs(read_sweep(path)) if r.run_id == resumed[0])
    whole = tmp_path / "whole"
    subprocess.run([sys.executable, "-m", "cosim", "run", str(tmp_path / "base.yaml"), "--out", str(whole),
                    "--quiet", "--seed", str(run.scenario.seed)], env=env, check=True)
    pd.testing.assert_frame_equal(pd.read_parquet(whole / "events.parquet").drop(columns="run"),
                                  pd.read_parquet(out / "runs" / resumed[0] / "events.parquet").drop(columns="run"))


def test_a_slurm_task_requeued_after_preemption_or_its_time_limit_goes_on_from_the_runs_checkpoint(tmp_path):
    """submitit's requeue hook (what a preempted or timed-out Slurm task runs again) resumes the run."""
    pytest.importorskip("submitit")
    from cosim.sweep.book import run_one
    from cosim.sweep.slurm_engine import RequeuedRun

    sc = load_scenario(QUICKSTART, overrides=[*TINY, "checkpoint.every_rounds=1"])
    run_scenario(sc, tmp_path / "whole")

    def kill(r, now):
        if r == 2:
            raise Killed

    with pytest.raises(Killed):  # the task, signalled in round 2
        run_scenario(sc, tmp_path / "task", on_round=kill)
    task = RequeuedRun(time_min=30)
    task.started = time.time() - 29 * 60                                     # signalled at its time limit
    assert task.at_time_limit()
    again = task.checkpoint(run_one, sc, tmp_path / "task", 1)
    assert isinstance(again.function, RequeuedRun) and again.args[1:] == (sc, tmp_path / "task", 1)
    summary = again.result()                                                 # the requeued task
    assert "went on from a checkpoint after round 1" in summary["notes"]
    for a, b in zip(frames(tmp_path / "whole"), frames(tmp_path / "task")):
        pd.testing.assert_frame_equal(a, b)
    # without checkpoints: preempted, it starts over; at its time limit it is not requeued
    plain = load_scenario(QUICKSTART, overrides=TINY)
    early = RequeuedRun(time_min=30)
    early.started = time.time() - 60
    assert not early.at_time_limit() and early.checkpoint(run_one, plain, tmp_path / "p") is not None
    assert task.checkpoint(run_one, plain, tmp_path / "p") is None
    assert RequeuedRun(time_min=60).at_time_limit(now=time.time() + 1e9) is False   # never started
