"""One run end to end: scenario -> radio, workload, clock -> the four output files."""

from __future__ import annotations

import math
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Callable

from .engine import SplitFedSimulation
from .output import check_out_dir, write_run
from .radio import build_radio
from .scenario import Scenario, dump_scenario
from .scenario.schema import per_client
from .trace import Recorder
from .workload import Evaluation, SplitWorkload


def client_flops_per_s(sc: Scenario) -> list[float]:
    """Each device's effective FLOP/s: given directly, or clock x FLOPs per cycle x efficiency."""
    c, k = sc.compute, sc.clients.count

    if c.client_flops_per_s is not None:
        return [per_client(c.client_flops_per_s, i) for i in range(k)]
    return [per_client(c.client_clock_hz, i) * c.client_flops_per_cycle * c.client_efficiency for i in range(k)]


def build_workload(sc: Scenario) -> SplitWorkload:
    """``workload.kind``: the real split-LoRA workload (imports torch, so only when a run needs it), or the
    replay of a measured cost table (no torch)."""
    if sc.workload.kind == "replay":
        from .workloads.replay import ReplayWorkload

        return ReplayWorkload.from_scenario(sc)
    from .workloads.reconfigurable import ReconfigurableSplitLoRAWorkload

    return ReconfigurableSplitLoRAWorkload.from_scenario(sc)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("cosim", "torch", "transformers", "peft", "simpy", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _eval_dict(ev: Evaluation | None) -> dict:
    return {"accuracy": ev.accuracy, "loss": ev.loss, "n": ev.n} if ev else {}


def run_scenario(sc: Scenario, out_dir: str | Path, *, workload: SplitWorkload | None = None,
                 on_round: Callable[[int, float], None] | None = None,
                 on_stage: Callable[[str], None] | None = None) -> dict:
    """Run ``sc`` and write ``events.parquet``, ``rounds.parquet``, ``clients.parquet``, ``summary.json``,
    ``scenario.yaml``.

    Returns the summary. The output folder is checked before anything runs and the
    files appear together at the end (see ``cosim.output``).
    """
    from results.analysis import critical_path, phase_totals

    stage = on_stage or (lambda text: None)
    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    wall0 = time.perf_counter()
    radios = build_radio(sc)
    rec = Recorder(run=sc.name)
    every = sc.training.eval_every
    timing = dict(radios=radios, recorder=rec, on_round=on_round, n_subchannels=sc.channel.n_subchannels,
                  client_flops_per_s=client_flops_per_s(sc), rounds=sc.training.rounds,
                  local_iterations=sc.training.local_iterations,
                  fed_server_flops_per_s=sc.compute.fed_server_flops_per_s,
                  evaluate_after=lambda r: every > 0 and ((r + 1) % every == 0 or r + 1 == sc.training.rounds))
    allocator = None
    if sc.strategy.name != "split":
        from .fedrun import fed_simulation

        sim, workload, before = fed_simulation(sc, timing, workload=workload, stage=stage)
    else:
        if workload is None:
            stage("loading model and data")
            workload = build_workload(sc)
        stage("evaluating before training")
        before = workload.evaluate()
        if sc.allocation.policy != "equal":
            from .allocation import SolverAllocator  # imports solver

            allocator = SolverAllocator.for_workload(sc, workload)
        sim = SplitFedSimulation(workload=workload, server_flops_per_s=sc.compute.server_flops_per_s,
                                 server_slots=sc.compute.server_slots, allocate=allocator, **timing)
    stage("training")
    total_s = sim.run()
    stage("evaluating after training")
    after = sim.evaluations.get(sc.training.rounds - 1) or workload.evaluate()

    events, rounds, clients = rec.events(), rec.rounds(), rec.clients()
    path = critical_path(events)
    last = rounds.iloc[-1] if len(rounds) else None
    summary = {
        "name": sc.name,
        "seed": sc.seed,
        "total_time_s": total_s,
        "rounds": sc.training.rounds,
        "clients": sc.clients.count,
        "critical_path_time_s": float(path["duration_s"].sum()),
        "phase_time_s": {k: float(v) for k, v in phase_totals(path).items()},
        "phase_busy_s": {k: float(v) for k, v in phase_totals(events).items()},
        "uplink_bytes": int(rounds["uplink_bytes"].sum()),
        "downlink_bytes": int(rounds["downlink_bytes"].sum()),
        "final_train_loss": float(last["train_loss"]) if last is not None else math.nan,
        "before": _eval_dict(before),
        "after": _eval_dict(after),
        "clients_detail": [
            {"client": k, "distance_m": r.distance_m, "large_scale_gain_db": 10 * math.log10(r.large_scale_gain_lin),
             "subchannels": len(r.subchannels), "uplink_power_w": r.uplink_power_w}
            for k, r in enumerate(radios)
        ],
        "allocation": {"policy": sc.allocation.policy, "every": sc.allocation.every,
                       "knowledge": sc.allocation.knowledge,
                       "decisions": allocator.decisions if allocator else []},
        "strategy": {"name": sc.strategy.name, "rank": int(getattr(workload, "rank", sc.lora.rank)),
                     "mean_sparsity": float(clients["sparsity"].mean()) if len(clients) else 0.0,
                     "tsfa": sim.policy.summary() if getattr(sim, "policy", None) is not None else None},
        "n_events": len(events),
        "wall_time_s": time.perf_counter() - wall0,
        "wall_s_by_kind": dict(rec.wall_s),
        "versions": _versions(),
    }
    write_run(out_dir, events=events, rounds=rounds, clients=clients, summary=summary,
              scenario_yaml=dump_scenario(sc))
    return summary
