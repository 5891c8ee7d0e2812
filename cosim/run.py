"""One run end to end: scenario -> radio -> strategy -> clock -> the output files, with no branch per strategy."""

from __future__ import annotations

import math
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Callable

from . import checkpoint
from .build import build_simulation, learning_modelled
from .devices import client_flops_per_s
from .energy import energy_totals
from .errors import RunStopped
from .output import check_out_dir, write_incomplete, write_run
from .radio import build_radio
from .scenario import Scenario, dump_scenario
from .strategies import get_strategy
from .trace import Recorder
from .worklog import LoggedWorkload
from .workload import Evaluation


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("cosim", "torch", "transformers", "peft", "simpy", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _eval_dict(ev: Evaluation | None) -> dict:
    return {"accuracy": ev.accuracy, "loss": ev.loss, "n": ev.n, "source": ev.source} if ev else {}


def run_scenario(sc: Scenario, out_dir: str | Path, *, workload=None,
                 on_round: Callable[[int, float], None] | None = None,
                 on_stage: Callable[[str], None] | None = None) -> dict:
    """Run ``sc`` and write ``events.parquet``, ``rounds.parquet``, ``clients.parquet``, ``summary.json``,
    ``scenario.yaml``.

    scenario -> radio -> strategy (and its workload) -> clock -> output. Returns the
    summary. The output folder is checked before anything runs and the files appear
    together at the end (see ``cosim.output``).
    """
    from .analysis.analysis import critical_path, phase_totals

    stage = on_stage or (lambda text: None)
    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    saved = checkpoint.read(out_dir, sc)  # going on from a killed run of this scenario
    wall0 = time.perf_counter()
    radios = build_radio(sc)
    cls = get_strategy(sc.strategy.name)
    if workload is None:
        workload = cls.build_workload(sc, radios=radios, client_flops_per_s=client_flops_per_s(sc), stage=stage)
    notes = []
    if sc.workload.kind == "replay" and not learning_modelled(sc):
        workload.learning_modelled = False
        notes.append("accuracy not modelled: the replay's pilot curves know nothing of deadlines, dropouts, "
                     "partial participation, staleness or the shared server adapter of this run's options")
    every = sc.checkpoint.every_rounds
    # An asynchronous run is rebuilt from time 0 on its workload's logged answers (cosim.worklog).
    rebuilt = sc.aggregation.mode in ("fedasync", "fedbuff") and bool(every or saved)
    if saved and bool(saved.get("rebuilt")) != rebuilt:  # pragma: no cover - the scenario decides both
        raise RuntimeError("a checkpoint of the other kind (rebuilt or restored) than this run's")
    logged = LoggedWorkload(workload, replay=saved["log"] if saved else None) if rebuilt else None
    rec = Recorder(run=sc.name)
    federation = build_simulation(sc, logged or workload, radios=radios, recorder=rec, on_round=on_round,
                                  start_s=saved["now_s"] if saved and not rebuilt else 0.0)
    strategy = federation.strategy
    unit = "server update" if rebuilt else "round"
    if saved:
        stage(f"going on from the checkpoint after {unit} {saved['next_round'] - 1}")
        if rebuilt:
            workload.load_state_dict(saved["workload"])
            before = checkpoint.saved_evaluation(saved["before"])
        else:
            before = checkpoint.restore(federation, saved, sc)
        notes.append(f"went on from a checkpoint after {unit} {saved['next_round'] - 1}")
    else:
        stage("evaluating before training")
        before = workload.evaluate()
    if every or saved:
        def keep(r: int) -> None:
            if saved and rebuilt and r + 1 == saved["next_round"]:
                checkpoint.check_rebuilt(federation, logged, saved)
            if not every or (logged is not None and logged.replaying):
                return
            if checkpoint.due(every, r, r + 1 == sc.training.rounds):
                state = (checkpoint.capture_rebuilt(federation, logged, before, sc) if rebuilt
                         else checkpoint.capture(federation, r + 1, before, sc))
                checkpoint.write(out_dir, state)

        federation.after_round = keep
    stage("training")
    try:
        total_s = federation.run(first_round=saved["next_round"] if saved and not rebuilt else 0)
    except RunStopped as exc:
        write_incomplete(out_dir, events=rec.events(), rounds=rec.rounds(), clients=rec.clients(),
                         scenario_yaml=dump_scenario(sc),
                         about={"name": sc.name, "seed": sc.seed, "error": str(exc), "where": exc.where,
                                "rounds_done": len(rec.round_rows), "before": _eval_dict(before)})
        raise RunStopped(f"{exc}; the trace up to then is in {out_dir} (incomplete.json)", exc.where) from None
    stage("evaluating after training")
    last_round = len(rec.round_rows) - 1
    after = federation.evaluations.get(last_round) or workload.evaluate()
    if federation.stopped:
        notes.append(f"stopped early: {federation.stopped}")
    convergence = getattr(workload, "convergence", None)
    pilot_rounds = convergence.rounds if convergence is not None else None
    if after.source == "extrapolated":
        notes.append(f"accuracy extrapolated: the replay read a fitted curve beyond the pilot's {pilot_rounds} "
                     f"measured rounds (or a rank it did not pilot): not a measurement")

    events, rounds, clients = rec.events(), rec.rounds(), rec.clients()
    path = critical_path(events)
    last = rounds.iloc[-1] if len(rounds) else None
    allocator = getattr(strategy, "allocator", None)
    summary = {
        "name": sc.name,
        "seed": sc.seed,
        "total_time_s": total_s,
        "rounds": len(rounds),
        "clients": sc.clients.count,
        "critical_path_time_s": float(path["duration_s"].sum()),
        "phase_time_s": {k: float(v) for k, v in phase_totals(path).items()},
        "phase_busy_s": {k: float(v) for k, v in phase_totals(events).items()},
        "uplink_bytes": int(rounds["uplink_bytes"].sum()),
        "energy": energy_totals(events, sc.clients.count),
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
                     "tsfa": strategy.summary()},
        "aggregation": {"mode": sc.aggregation.mode, "updates": int(federation.version),
                        "clients_cut": int(events.loc[events["cut"] & (events["client"] >= 0), "client"].nunique()),
                        "statuses": {str(k): int(v) for k, v in clients["status"].value_counts().items()}},
        "notes": notes,
        "pilot_rounds": pilot_rounds,
        "n_events": len(events),
        "wall_time_s": time.perf_counter() - wall0,
        "wall_s_by_kind": dict(rec.wall_s),
        "runtime": getattr(workload, "runtime", None),  # device, base dtype, torch threads; null: no torch work
        "versions": _versions(),
    }
    write_run(out_dir, events=events, rounds=rounds, clients=clients, summary=summary,
              scenario_yaml=dump_scenario(sc))
    return summary
