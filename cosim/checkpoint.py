"""Checkpoints at round ends, and going on from one: a killed run loses at most the rounds since.

A checkpoint holds what the run needs to go on from the end of a round and
nothing that can be rebuilt from the scenario: the workload's adapters, AdamW
states, batch streams and torch's generator (or a replay's place in its
table), the strategy's state (TSFA's virtual queue, the allocation policy's
decisions), the clients' uplink allocations, the block-error streams of the
links, the federation's versions, the held-out evaluations so far, the
simulated time and the trace so far. Fading, shadowing, mobility and
availability are drawn lazily and deterministically from the scenario's seed
(counter-based, or in a fixed order), so they are rebuilt, not saved. SimPy
environments cannot be pickled: the clock is rebuilt at the checkpoint's time
and the rounds go on from the next one.

The file is ``<out>/checkpoint/state.pt``, plain data and tensors written with
``torch.save`` and read with ``torch.load(weights_only=True)`` (no pickled
code), written to a temporary file and renamed, so a checkpoint is complete or
absent. The run's output files replace the folder when the run ends.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import CosimError, ScenarioError
from .radio import with_uplink
from .scenario import Scenario, dump_scenario
from .workload import Evaluation

FORMAT = 1
FOLDER = "checkpoint"
FILE = "state.pt"


def without_checkpoint(sc: Scenario) -> Scenario:
    """``sc`` with the checkpoint interval at its default: the run is the same whatever the interval."""
    import dataclasses

    from .scenario.schema import Checkpoint

    return dataclasses.replace(sc, checkpoint=Checkpoint())


def checkpoint_path(out_dir: Path) -> Path:
    return Path(out_dir) / FOLDER / FILE


def _eval(ev: Evaluation | None):
    return None if ev is None else ev.fields()


def saved_evaluation(v) -> Evaluation | None:
    """An evaluation as a checkpoint keeps it (None: none)."""
    return None if v is None else Evaluation.from_fields(v)


def _error_streams(sim) -> list:
    """The block-error generators of every link (each once, in a fixed order)."""
    seen, out = set(), []
    links = [link for radio in sim.home_radios for link in (radio.uplink, radio.downlink)]
    if sim.multicast is not None:
        links.append(sim.multicast)
    for link in links:
        rng = getattr(link, "error_rng", None)
        if rng is not None and id(rng) not in seen:
            seen.add(id(rng))
            out.append(rng)
    return out


def capture(federation, next_round: int, before: Evaluation, sc: Scenario) -> dict:
    """The state of a run at the end of round ``next_round - 1`` (plain data and tensors)."""
    sim = federation.sim
    radios = []
    for home, now in zip(sim.home_radios, sim.radios):
        radios.append(None if now is home else [list(map(int, now.subchannels)),
                                                np.asarray(now.uplink.power_w, dtype=float).tolist()])
    return {
        "format": FORMAT, "scenario": dump_scenario(without_checkpoint(sc)), "every_rounds": sc.checkpoint.every_rounds, "next_round": next_round, "now_s": sim.env.now,
        "before": _eval(before),
        "federation": {"version": federation.version, "held": list(federation.held),
                       "global_nbytes": federation.global_nbytes,
                       "evaluations": {int(r): _eval(ev) for r, ev in federation.evaluations.items()}},
        "workload": federation.workload.state_dict(),
        "strategy": federation.strategy.state_dict(),
        "radios": radios,
        "error_streams": [rng.bit_generator.state for rng in _error_streams(sim)],
        "recorder": sim.rec.state_dict(),
    }


def restore(federation, state: dict, sc: Scenario) -> Evaluation:
    """Put ``federation`` (built from the same scenario, its clock at ``state['now_s']``) where the checkpoint
    left it; returns the evaluation before training."""
    sim = federation.sim
    federation.version = int(state["federation"]["version"])
    federation.held = [int(v) for v in state["federation"]["held"]]
    federation.global_nbytes = int(state["federation"]["global_nbytes"])
    federation.evaluations = {int(r): saved_evaluation(v) for r, v in state["federation"]["evaluations"].items()}
    federation.workload.load_state_dict(state["workload"])
    federation.strategy.load_state_dict(state["strategy"])
    for k, saved in enumerate(state["radios"]):
        if saved is not None:
            sim.radios[k] = with_uplink(sim.home_radios[k], sc, saved[0], saved[1])
    for rng, s in zip(_error_streams(sim), state["error_streams"]):
        rng.bit_generator.state = s
    sim.rec.load_state_dict(state["recorder"])
    return saved_evaluation(state["before"])


def capture_rebuilt(federation, logged, before: Evaluation, sc: Scenario) -> dict:
    """An asynchronous run's state after server update ``federation.version - 1``.

    Clients are half-way through their updates at any moment of such a run, and SimPy processes cannot be
    saved: the checkpoint keeps the workload's state with its steps in flight, and the log of every answer
    the workload gave the engine (``logged``, a :class:`cosim.worklog.LoggedWorkload`); going on, the
    engine runs again from time 0 on the log and rebuilds the rest (see :mod:`cosim.worklog`).
    """
    sim = federation.sim
    return {
        "format": FORMAT, "scenario": dump_scenario(without_checkpoint(sc)), "every_rounds": sc.checkpoint.every_rounds,
        "next_round": federation.version, "now_s": sim.env.now, "rebuilt": True, "before": _eval(before),
        "workload": logged.inner.state_dict(), "log": logged.log, "n_events": sim.rec.mark().n_events,
        "wall_s": dict(sim.rec.wall_s),
    }


def check_rebuilt(federation, logged, state: dict) -> None:
    """At the server update where ``state`` was captured, the rebuilt run must stand where the killed one
    stood: the log read back to its end, the same time and trace rows (else a bug: stop)."""
    from .worklog import LogDiverged

    sim = federation.sim
    where = (logged.replaying, sim.env.now, sim.rec.mark().n_events)
    if where != (False, state["now_s"], state["n_events"]):
        raise LogDiverged(f"the rebuilt run stands at (replaying, t, events) = {where}, the checkpoint at "
                          f"{(False, state['now_s'], state['n_events'])}")
    sim.rec.wall_s = dict(state["wall_s"])  # the work's wall time, not the read-back's


def write(out_dir: Path, state: dict) -> None:
    """Write ``state`` as the folder's checkpoint, atomically (complete or absent)."""
    import torch

    folder = Path(out_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".pt", dir=folder)
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, folder / FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(out_dir: Path, sc: Scenario | None = None) -> dict | None:
    """The folder's checkpoint, or None; with ``sc``, one written by that very scenario or a ScenarioError."""
    path = checkpoint_path(out_dir)
    if not path.is_file():
        return None
    import torch

    try:
        state = torch.load(path, weights_only=True)
    except Exception as exc:  # a damaged file: name it, never run on it
        raise CosimError(f"{path}: not a readable cosim checkpoint ({exc.__class__.__name__}); delete the "
                         f"folder's {FOLDER}/ to start over") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CosimError(f"{path}: not a cosim checkpoint of format {FORMAT}; delete the folder's {FOLDER}/ "
                         f"to start over")
    if sc is not None and state["scenario"] != dump_scenario(without_checkpoint(sc)):
        raise ScenarioError([f"{path}: written by another scenario than this run's (resume with `cosim run "
                             f"--resume {Path(out_dir)}`, or delete {Path(out_dir) / FOLDER} to start over)"])
    return state


def due(every_rounds: int, round_index: int, last_round: bool) -> bool:
    """Whether to checkpoint after round ``round_index`` (every ``every_rounds``; not after the last)."""
    return every_rounds > 0 and not last_round and (round_index + 1) % every_rounds == 0
