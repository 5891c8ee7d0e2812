"""A round's plan: what a policy decides at the start of a round, for the clients selected."""

from __future__ import annotations

from dataclasses import dataclass, field

NAN = float("nan")


@dataclass(frozen=True)
class RoundPlan:
    """A policy's decision for one round.

    Attributes
    ----------
    radios : list of ClientRadio
        The selected clients' radios with this round's uplinks, in the order of ``clients``.
    sparsity : list of float
        Each selected client's upload sparsity.
    clients : list of int
        The selected clients (None: every client, in order).
    predicted_s : float
        The round delay the policy predicts (NaN: no prediction).
    queue_s : float
        TSFA's virtual queue the decision saw (NaN for other strategies).
    cut, rank : int or None
        The round's cut and LoRA rank where the policy sets them.
    """

    radios: list
    sparsity: list[float]
    clients: list[int] | None = None
    predicted_s: float = NAN
    queue_s: float = NAN
    cut: int | None = None
    rank: int | None = None
    extra: dict = field(default_factory=dict)

    def index(self, client: int) -> int:
        """Position of ``client`` in ``radios`` and ``sparsity``."""
        return client if self.clients is None else self.clients.index(client)


@dataclass
class ClientWork:
    """What one client did in a round (or one asynchronous update), filled in as its chain runs."""

    client: int
    t_start_s: float
    compute_s: float = 0.0
    uplink_bytes: int = 0          # everything sent up: cut activations and the adapter upload
    adapter_bytes: int = 0
    adapter_upload_s: float = 0.0
    sparsity: float = 0.0
    energy_mark: tuple = (0.0, 0.0)  # the recorder's reading of the device's energy when it started
