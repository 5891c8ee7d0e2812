"""What the engines ask of "the workload": each step's cost and result.

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


@dataclass(frozen=True)
class Upload:
    """A client's adapter upload as sent: its bytes (values + indices) and the fraction of values withheld."""

    nbytes: int
    sparsity: float = 0.0


class FedWorkload(Protocol):
    """Federated LoRA without a split: K clients train the whole model's adapters, a server averages them."""

    n_clients: int
    rank: int

    def sample_counts(self) -> list[int]:
        """Training examples held by each client (the averaging weights)."""

    def local_step(self, client: int) -> StepCost:
        """One local training step of the whole model on the client's next batch (FLOPs, loss)."""

    def upload(self, client: int, sparsity: float) -> Upload:
        """The client's adapter upload, sparsified as the strategy says with this ratio."""

    def aggregate(self, weights: Mapping[int, float]) -> StepCost:
        """Average the uploads into the global adapter and give it to every client; ``nbytes``: the broadcast."""

    def evaluate(self) -> Evaluation:
        """Held-out accuracy and loss of the global adapter."""

    def step_flops(self) -> float:
        """FLOPs of one local step (the shape of every training batch)."""

    def dense_nbytes(self) -> int:
        """Bytes of a client's whole adapter sent dense."""
