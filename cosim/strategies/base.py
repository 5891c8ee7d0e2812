"""A strategy: what the clients do in a round and what the servers do with what arrives.

A strategy is chosen by ``strategy.name`` (the registry in
:mod:`cosim.strategies`). It builds its workload, plans each round for the
clients selected (their uplinks, upload sparsity, cut and rank), gives each
client's local work as a chain of timed steps (:class:`cosim.steps.TimedSteps`)
and says what it uploads. How a round closes (:mod:`cosim.closing`), who takes
part (:mod:`cosim.participation`), when devices are online
(:mod:`cosim.availability`) and the asynchronous server
(:mod:`cosim.asynchronous`) are separate pieces that work with any strategy;
:data:`cosim.scenario.combinations.MODES_BY_STRATEGY` says which modes each runs under.
"""

from __future__ import annotations

from typing import Callable, ClassVar

import numpy as np

import channel

from ..plan import ClientWork, RoundPlan
from ..radio import equal_subchannels, with_uplink
from ..scenario import Scenario
from ..workload import Upload

class Strategy:
    """The base of every strategy.

    Parameters
    ----------
    sc : Scenario
    workload
        The strategy's workload (:mod:`cosim.workload`).
    """

    #: The name in ``strategy.name``.
    name: ClassVar[str] = ""
    #: The event kind whose losses are the round's training loss.
    loss_kind: ClassVar[str] = ""
    #: Clients take turns in the round (split learning) instead of working in parallel.
    sequential: ClassVar[bool] = False

    def __init__(self, *, sc: Scenario, workload):
        self.sc = sc
        self.workload = workload
        self.sim = None

    @classmethod
    def build_workload(cls, sc: Scenario, *, radios: list, client_flops_per_s: list[float],
                       stage: Callable[[str], None]):
        """The strategy's workload for ``sc`` (loads the model where it is a real one)."""
        raise NotImplementedError

    def attach(self, sim) -> None:
        """Run on ``sim`` (:class:`cosim.steps.TimedSteps`)."""
        self.sim = sim

    def plan(self, round_index: int, now_s: float, selected: list[int]) -> RoundPlan:
        """The round's radios and upload sparsity for ``selected`` (default: equal shares, dense)."""
        return equal_plan(self.sc, self.sim.home_radios, selected)

    def local_work(self, round_index: int, k: int, work: ClientWork, plan: RoundPlan):
        """Process body: client ``k``'s local work in the round (fills ``work.compute_s``...)."""
        raise NotImplementedError

    def upload(self, round_index: int, k: int, plan: RoundPlan) -> Upload:
        """What client ``k`` uploads at the end of its local work."""
        raise NotImplementedError

    def observe(self, latency_s: float) -> float:
        """The round's realised latency (TSFA's queue); returns a value for ``rounds.virtual_queue``."""
        return float("nan")

    def summary(self) -> dict | None:
        """The strategy's own part of ``summary.json`` (TSFA's decisions), or None."""
        return None

    def state_dict(self) -> dict:
        """What the strategy carries from round to round, as plain data (for a checkpoint)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def equal_plan(sc: Scenario, radios: list, selected: list[int], sparsity: float = 0.0) -> RoundPlan:
    """Every selected client on an equal share of the uplink band, the device's power spread over it.

    ``radios``: every client's radio as built at the start (:func:`cosim.radio.build_radio`). With every
    client selected they are kept; otherwise the subchannels are dealt to the selected clients in
    contiguous blocks.
    """
    if len(selected) == len(radios):
        return RoundPlan(radios=list(radios), sparsity=[sparsity] * len(radios), clients=list(selected))
    device_w = float(channel.dbm_to_watt(sc.clients.max_power_dbm))
    deal = equal_subchannels(len(selected), sc.channel.n_subchannels)
    new = [with_uplink(radios[k], sc, subs, channel.equal_power_w(device_w, len(subs)))
           for k, subs in zip(selected, deal)]
    return RoundPlan(radios=new, sparsity=[sparsity] * len(selected), clients=list(selected))


def mean_or_nan(values) -> float:
    values = list(values)
    return float(np.mean(values)) if values else float("nan")
