"""The pieces of a run, built from a scenario: devices' compute, availability, participation, the federation.

``cosim.run`` builds a run from these; tests and benchmarks build a simulation
with their own workload through :func:`build_simulation`.
"""

from __future__ import annotations

from typing import Callable

from . import fastreplay
from .asynchronous import AsyncFederation
from .availability import Availability, read_availability_file
from .devices import client_flops_per_s
from .energy import device_j_per_flop, server_j_per_flop
from .participation import Participation
from .rounds import Federation
from .scenario import Scenario
from .scenario.schema import ASYNC_MODES
from .seeding import stream
from .radio import build_radio, multicast_link
from .steps import TimedSteps
from .strategies import Strategy, get_strategy
from .trace import Recorder


def build_availability(sc: Scenario) -> Availability:
    """When each device is online (``availability``), each device's periods on its own stream."""
    av, k = sc.availability, sc.clients.count
    if av.model == "on_off":
        return Availability.on_off(k, mean_on_s=av.mean_on_s, mean_off_s=av.mean_off_s, start=av.start,
                                   rngs=[stream(sc.seed, "availability", i) for i in range(k)])
    if av.model == "file":
        return Availability(read_availability_file(av.file, k))
    return Availability.always(k)


def build_participation(sc: Scenario, radios: list) -> Participation:
    """Who takes part in each round (``participation``, over-selection from ``aggregation``)."""
    p, a = sc.participation, sc.aggregation
    return Participation(fraction=p.fraction, by=p.by, gains=[r.large_scale_gain_lin for r in radios],
                         over_selection=a.over_selection if a.mode == "over_selection" else 1.0, seed=sc.seed)


def build_federation(sc: Scenario, sim: TimedSteps, strategy: Strategy, *,
                     on_round: Callable[[int, float], None] | None = None, fast_replay: bool = True) -> Federation:
    """The loop of rounds (or the asynchronous server) that drives ``strategy`` on ``sim``.

    ``fast_replay``: compute a replay's rounds in one go where nothing outside a round can observe its
    inside (:mod:`cosim.fastreplay`); False keeps one SimPy event per step (the same events).
    """
    every, rounds = sc.training.eval_every, sc.training.rounds
    a = sc.aggregation
    common = dict(sim=sim, strategy=strategy, participation=build_participation(sc, sim.radios), rounds=rounds,
                  mode=a.mode, on_round=on_round,
                  evaluate_after=lambda r: every > 0 and ((r + 1) % every == 0 or r + 1 == rounds))
    if a.mode in ASYNC_MODES:
        return AsyncFederation(alpha=a.alpha, exponent=a.staleness_exponent, buffer_size=a.buffer_size,
                               max_staleness=a.max_staleness, server_lr=a.server_lr, time_budget_s=a.time_budget_s,
                               seed=sc.seed, **common)
    fed = Federation(deadline_s=a.deadline_s, **common)
    if fast_replay and fastreplay.applies(sc, sim.workload):
        fed.fast = fastreplay.FastReplay(fed)
    return fed


def build_simulation(sc: Scenario, workload, *, radios: list | None = None, recorder: Recorder | None = None,
                     on_round: Callable[[int, float], None] | None = None, fast_replay: bool = True,
                     start_s: float = 0.0) -> Federation:
    """The whole simulation of ``sc`` driving ``workload``: strategy, clock, rounds. ``run()`` it.

    ``radios``: the clients' radios (default: built from the scenario); ``recorder``: where the rows
    go (default: a new one, ``federation.sim.rec``); ``start_s``: the clock's time at the start (a run
    going on from a checkpoint).
    """
    radios = build_radio(sc) if radios is None else radios
    strategy = get_strategy(sc.strategy.name).create(sc, workload)
    sim = TimedSteps(workload=workload, radios=radios, client_flops_per_s=client_flops_per_s(sc),
                     server_flops_per_s=sc.compute.server_flops_per_s, server_slots=sc.compute.server_slots,
                     fed_server_flops_per_s=sc.compute.fed_server_flops_per_s,
                     recorder=recorder or Recorder(run=sc.name), availability=build_availability(sc),
                     n_subchannels=sc.channel.n_subchannels, device_j_per_flop=device_j_per_flop(sc),
                     server_j_per_flop=server_j_per_flop(sc),
                     multicast=multicast_link(sc, radios) if sc.channel.broadcast == "multicast" else None,
                     start_s=start_s)
    strategy.attach(sim)
    return build_federation(sc, sim, strategy, on_round=on_round, fast_replay=fast_replay)


def learning_modelled(sc: Scenario) -> bool:
    """Whether a replay's pilot curves describe this run's learning: not under deadlines, over-selection,
    partial participation, dropouts, asynchronous aggregation or a strategy other than SFL-V1."""
    return (sc.aggregation.mode == "barrier" and sc.participation.fraction == 1.0
            and sc.availability.model == "always" and sc.strategy.name == "split")
