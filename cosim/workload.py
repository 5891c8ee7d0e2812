"""What the engine asks of "the workload": each step's cost and result.

The engine times events; the workload does (or replays) the work inside them.
:class:`SplitWorkload` is the contract; ``cosim.workloads.split_lora`` runs the
real torch steps of ``llm_split`` and measures them. A replay workload that reads
a measured cost table without torch fits the same contract, so the engine never
knows which one it drives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Protocol


@dataclass(frozen=True)
class StepCost:
    """The measured cost of one step.

    Attributes
    ----------
    flops : float
        Floating-point operations of the step's compute (0 for a pure transfer).
    nbytes : int
        Bytes of the payload the step produces for the next hop (0 if none).
    loss : float or None
        Training loss, where the step computes one.
    """

    flops: float = 0.0
    nbytes: int = 0
    loss: float | None = None


@dataclass(frozen=True)
class Evaluation:
    """Held-out metrics of the current global model."""

    accuracy: float
    loss: float
    n: int


class SplitWorkload(Protocol):
    """The split-federated work of one run: K clients, a main server, a federated server."""

    n_clients: int

    def sample_counts(self) -> list[int]:
        """Training examples held by each client (the FedAvg weights)."""

    def client_forward(self, client: int) -> StepCost:
        """Client forward on its next batch; ``nbytes``: activations + labels + mask sent up."""

    def server_step(self, client: int) -> StepCost:
        """Main-server forward, backward and update for that client; ``nbytes``: gradient sent down."""

    def client_backward(self, client: int) -> StepCost:
        """Client backward from the received gradient and its optimizer step."""

    def adapter_upload(self, client: int) -> StepCost:
        """The client-side adapter the client uploads to the federated server (``nbytes``)."""

    def aggregate(self, weights: Mapping[int, float]) -> StepCost:
        """FedAvg of client- and server-side adapters; ``nbytes``: the broadcast adapter."""

    def evaluate(self) -> Evaluation:
        """Held-out accuracy and loss of the global model."""

    def cost_table(self) -> dict:
        """``solver.CostTable`` fields (plain arrays) for this run's one cut and rank, per iteration."""
