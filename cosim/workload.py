"""What the engine asks of "the workload": each step's cost now, its work when the event ends.

The engine times events; the workload does (or replays) the work inside them.
A compute step is announced as a :class:`Step`: its FLOPs are known when the
event starts (measured on the real modules, once per batch shape), so the
event's duration is known, and its work runs when the event ends. An event
cut short (a deadline, a device going offline) never runs its work: what the
clock cuts is not learned. ``cosim.workloads.split_lora`` and
``cosim.workloads.fed_lora`` run the real torch steps of ``llm_split``;
``cosim.workloads.replay`` plays a measured cost table back without torch.

Every workload keeps a *global* adapter (what the federated server last
broadcast) and one working copy per client:

- synchronous rounds: :meth:`aggregate` averages the included clients' uploads
  into the global adapter and gives it to every client; with no client
  included the global one is unchanged and every client is put back on it;
- asynchronous aggregation: :meth:`begin` puts one client on the newest global
  adapter (its base version); :meth:`mix` (FedAsync) or :meth:`buffer` and
  :meth:`apply_buffer` (FedBuff) fold its upload into the global adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Protocol

NAN = float("nan")


@dataclass(frozen=True)
class StepCost:
    """The measured result of one step.

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
class Step:
    """A compute step about to start: its FLOPs, and the work that runs when its event ends.

    ``run()`` returns the step's :class:`StepCost` (the bytes it produced, its loss).
    """

    flops: float
    run: Callable[[], StepCost]


def done(cost: StepCost) -> Step:
    """A step whose result is already known (no work left to run)."""
    return Step(flops=cost.flops, run=lambda: cost)


@dataclass(frozen=True)
class Evaluation:
    """Held-out metrics of the global adapter.

    ``source``: ``"measured"`` (the real model on held-out data), ``"pilot"`` (a
    replay reading a pilot run's measured curve), ``"extrapolated"`` (a replay
    beyond the pilot's measured rounds: a fitted curve, not a measurement) or
    ``"not_modelled"`` (NaN: a replay under options the pilot knows nothing of).
    """

    accuracy: float
    loss: float
    n: int
    source: str = "measured"

    def fields(self) -> list:
        """As plain data (for a checkpoint: ``torch.load(weights_only=True)`` reads it back)."""
        return [float(self.accuracy), float(self.loss), int(self.n), str(self.source)]

    @classmethod
    def from_fields(cls, v: list) -> "Evaluation":
        """Back from :meth:`fields`."""
        return cls(accuracy=float(v[0]), loss=float(v[1]), n=int(v[2]), source=str(v[3]))


@dataclass(frozen=True)
class Upload:
    """A client's adapter upload as sent: its bytes (values + indices) and the fraction of values withheld."""

    nbytes: int
    sparsity: float = 0.0


class Workload(Protocol):
    """What every workload offers the engine, whatever the strategy."""

    n_clients: int

    def sample_counts(self) -> list[int]:
        """Training examples held by each client (the averaging weights)."""

    def cancel(self, client: int) -> None:
        """Client ``client``'s chain was cut: forget its step in flight (its update is lost)."""

    def aggregate(self, weights: Mapping[int, float]) -> Step:
        """Average the uploads of the clients in ``weights`` into the global adapter, then every client
        holds it; ``run().nbytes``: the adapter broadcast. Empty ``weights``: no FLOPs, nothing changes
        but every client is put back on the global adapter."""

    def begin(self, client: int) -> None:
        """Client ``client`` starts local work from the newest global adapter (asynchronous modes)."""

    def mix(self, client: int, weight: float) -> Step:
        """FedAsync: global <- (1 - weight) global + weight x (client's upload)."""

    def buffer(self, client: int, key: int) -> None:
        """FedBuff: keep the client's update (its upload minus the global adapter it started from) as ``key``."""

    def apply_buffer(self, weights: Mapping[int, float]) -> Step:
        """FedBuff: global <- global + sum_key weights[key] x update_key; those updates leave the buffer."""

    def evaluate(self) -> Evaluation:
        """Held-out accuracy and loss of the global adapter."""


class SplitWorkload(Workload, Protocol):
    """Split learning: K clients, a main server, a federated server."""

    def client_forward(self, client: int) -> Step:
        """Client forward on its next batch; ``run().nbytes``: activations + labels + mask sent up."""

    def server_step(self, client: int) -> Step:
        """Main-server forward, backward and update for that client; ``run().nbytes``: gradient sent down."""

    def client_backward(self, client: int) -> Step:
        """Client backward from the received gradient and its optimizer step."""

    def adapter_upload(self, client: int) -> StepCost:
        """The client-side adapter the client uploads to the federated server (``nbytes``)."""

    def cost_table(self) -> dict:
        """``solver.CostTable`` fields (plain arrays) for this run's one cut and rank, per iteration."""


class FedWorkload(Workload, Protocol):
    """Federated LoRA without a split: K clients train the whole model's adapters, a server averages them."""

    rank: int

    def local_step(self, client: int) -> Step:
        """One local training step of the whole model on the client's next batch (FLOPs, loss)."""

    def upload(self, client: int, sparsity: float) -> Upload:
        """The client's adapter upload, sparsified as the strategy says with this ratio."""

    def step_flops(self) -> float:
        """FLOPs of one local step (the shape of every training batch)."""

    def dense_nbytes(self) -> int:
        """Bytes of a client's whole adapter sent dense."""
