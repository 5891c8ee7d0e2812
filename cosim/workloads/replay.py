"""The replay workload: a measured cost table played back, no torch.

Each step reports the FLOPs and bytes that ``cosim profile`` measured on the
real model for the current (cut, rank), exactly as the real workload
(:mod:`cosim.workloads.split_lora`) would measure them for a batch of the same
shape, so the simulated clock runs as in a real run at a tiny fraction of the
wall time (thousands of clients). Nothing is learned: ``evaluate`` reads the
held-out loss and accuracy of the profile's pilot curve at the current rank
after the rounds done so far (measured within the pilot, fitted beyond it:
:meth:`cosim.convergence.Convergence.metrics_at`), or NaN without a pilot.
Server steps report no training loss.

This module imports neither torch nor ``llm_split``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import CosimError, ScenarioError
from ..profile_file import profile_convergence, read_profile
from ..scenario import Scenario
from ..workload import Evaluation, Step, StepCost, done


class ReplayWorkload:
    """The :class:`cosim.workload.SplitWorkload` contract played back from a profile.

    Parameters
    ----------
    profile : dict
        A profile as :func:`cosim.profile.read_profile` returns it; it must
        have ``server_adapter_bytes`` and ``adapter_element_bytes``.
    n_clients : int
        K.
    cut, rank : int
        The starting cut and rank (a row and a column of the table).
    source : str
        Where the profile came from, for messages.
    shared_server : bool
        One server-side adapter for all clients (SFL-V2, SL): the federated server averages the client
        side only.
    """

    def __init__(self, *, profile: dict, n_clients: int, cut: int, rank: int, source: str = "workload.profile",
                 shared_server: bool = False):
        self.shared_server = shared_server
        self.profile = profile
        self.source = source
        self.n_clients = n_clients
        self.costs = profile["costs"]
        self._cuts = [int(c) for c in self.costs["cuts"]]
        self._ranks = [int(r) for r in self.costs["ranks"]]
        self.server_adapter_bytes = np.asarray(profile["server_adapter_bytes"], dtype=float)
        self.adapter_element_bytes = float(profile["adapter_element_bytes"])
        self.convergence = profile_convergence(profile)
        self.rounds_done = 0
        #: False where the run's options (deadlines, dropouts, partial participation, asynchronous
        #: aggregation, SFL-V2, SL) are not what the pilot ran: accuracy is then not modelled.
        self.learning_modelled = True
        self.configure(cut=cut, rank=rank)

    @classmethod
    def from_scenario(cls, sc: Scenario) -> "ReplayWorkload":
        """The replay of ``sc``: its ``workload.profile`` at its cut and rank (every mismatch reported)."""
        path = sc.workload.profile
        if path is None:
            raise ScenarioError(["workload.profile: expected a `cosim profile --out` JSON file with "
                                 "workload.kind: replay (got null)"])
        try:
            profile = read_profile(Path(path))
        except CosimError as exc:
            raise ScenarioError([f"workload.profile: {exc}"]) from None
        problems = []
        if profile["server_adapter_bytes"] is None or profile["adapter_element_bytes"] is None:
            problems.append(f"workload.profile: {path} has no server_adapter_bytes (written by an older "
                            f"`cosim profile`); profile again")
        cuts, ranks = profile["costs"]["cuts"].tolist(), profile["costs"]["ranks"].tolist()
        if sc.split.cut_layer not in cuts:
            problems.append(f"workload.profile: {path} lacks split.cut_layer={sc.split.cut_layer} (cuts {cuts})")
        if sc.lora.rank not in ranks:
            problems.append(f"workload.profile: {path} lacks lora.rank={sc.lora.rank} (ranks {ranks})")
        for key, want, got in (("model.name", sc.model.name, profile.get("model")),
                               ("training.batch_size", sc.training.batch_size, profile.get("batch_size")),
                               ("training.seq_len", sc.training.seq_len, profile.get("seq_len"))):
            if want != got:
                problems.append(f"workload.profile: {path} was measured with {key}={got} (the scenario has {want})")
        if problems:
            raise ScenarioError(problems)
        return cls(profile=profile, n_clients=sc.clients.count, cut=sc.split.cut_layer, rank=sc.lora.rank,
                   source=str(path), shared_server=sc.strategy.name != "split")

    # -- which row and column ---------------------------------------------------------------

    def configure(self, *, cut: int, rank: int) -> None:
        """Switch to cut ``cut`` and rank ``rank`` (a row and a column of the table)."""
        if cut not in self._cuts or rank not in self._ranks:
            raise CosimError(f"{self.source}: no cost for cut {cut}, rank {rank} "
                             f"(cuts {self._cuts}, ranks {self._ranks})")
        self.cut, self.rank = int(cut), int(rank)
        self._i, self._j = self._cuts.index(cut), self._ranks.index(rank)

    # -- the SplitWorkload contract -----------------------------------------------------------

    def sample_counts(self) -> list[int]:
        # No data here: equal FedAvg weights (the averaging's cost depends on the count of clients only).
        return [1] * self.n_clients

    def client_forward(self, client: int) -> Step:
        c, i, j = self.costs, self._i, self._j
        return done(StepCost(flops=float(c["client_forward_flops"][i, j]), nbytes=int(c["activation_bytes"][i])))

    def server_step(self, client: int) -> Step:
        c, i, j = self.costs, self._i, self._j
        return done(StepCost(flops=float(c["server_flops"][i, j]), nbytes=int(c["gradient_bytes"][i])))

    def client_backward(self, client: int) -> Step:
        return done(StepCost(flops=float(self.costs["client_backward_flops"][self._i, self._j])))

    def resume_step(self, name: str, client: int) -> Step:
        """A client's step that started before a checkpoint and had not run (a replayed step draws nothing)."""
        if name not in ("client_forward", "server_step", "client_backward"):
            raise ValueError(f"a {name} step cannot go on from a checkpoint")
        return getattr(self, name)(client)

    def adapter_upload(self, client: int) -> StepCost:
        return StepCost(nbytes=int(self.costs["client_adapter_bytes"][self._i, self._j]))

    def cancel(self, client: int) -> None:
        pass  # nothing is learned, nothing to forget

    def aggregate(self, weights: Mapping[int, float]) -> Step:
        client = int(self.costs["client_adapter_bytes"][self._i, self._j])
        if not weights:
            return done(StepCost(nbytes=client))
        self.rounds_done += 1
        # As the real workload counts it: one multiply and one add per element per client, on both parts.
        return done(StepCost(flops=2.0 * len(weights) * self._n_elements(), nbytes=client))

    def begin(self, client: int) -> None:
        pass

    def mix(self, client: int, weight: float) -> Step:
        self.rounds_done += 1
        return done(StepCost(flops=3.0 * self._n_elements(), nbytes=self._client_bytes()))

    def buffer(self, client: int, key: int) -> None:
        pass

    def apply_buffer(self, weights: Mapping[int, float]) -> Step:
        self.rounds_done += 1
        return done(StepCost(flops=2.0 * len(weights) * self._n_elements(), nbytes=self._client_bytes()))

    def evaluate(self) -> Evaluation:
        if self.convergence is None or not self.learning_modelled:
            return Evaluation(accuracy=math.nan, loss=math.nan, n=0, source="not_modelled")
        loss, accuracy = self.convergence.metrics_at(self.rank, self.rounds_done)
        # Within a pilot run of this very rank the value was measured; else it is read off a fit.
        measured = self.rank in self.convergence.ranks and self.rounds_done <= self.convergence.rounds
        return Evaluation(accuracy=accuracy, loss=loss, n=int(self.profile["pilot"].get("test_size", 0)),
                          source="pilot" if measured else "extrapolated")

    def state_dict(self) -> dict:
        """Where the replay stands: rounds done (the pilot curve's abscissa), cut and rank."""
        return {"rounds_done": self.rounds_done, "cut": self.cut, "rank": self.rank}

    def load_state_dict(self, state: dict) -> None:
        self.configure(cut=int(state["cut"]), rank=int(state["rank"]))
        self.rounds_done = int(state["rounds_done"])

    def cost_table(self) -> dict:
        return {name: np.array(values) for name, values in self.costs.items()}

    def _client_bytes(self) -> int:
        return int(self.costs["client_adapter_bytes"][self._i, self._j])

    def _n_elements(self) -> float:
        """Adapter values the federated server averages: both parts (SFL-V1), the client part when shared."""
        server = 0.0 if self.shared_server else float(self.server_adapter_bytes[self._i, self._j])
        return (self._client_bytes() + server) / self.adapter_element_bytes

    def rounds_to_target(self) -> np.ndarray | None:
        """rounds(rank) for every rank of the table from the pilot curves, or None without a pilot."""
        return None if self.convergence is None else self.convergence.rounds_for(self.costs["ranks"])
