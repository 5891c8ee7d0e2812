"""The global adapter and what the servers keep beside it: each client's base version, FedBuff's buffer.

A real workload (split or federated LoRA) holds one working adapter per client;
this is the server's side of it. Global states are replaced, never written
into, so a client's base can be the very dict that was global when it began.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

from llm_split.fedavg import apply_deltas, mix_state_dicts, state_delta

State = Mapping[str, object]  # name -> torch.Tensor


class AdapterVersions:
    """The global adapter of a workload, each client's base, FedBuff's buffer.

    Parameters
    ----------
    n_clients : int
    get_state, set_state : callables
        A client's working adapter (the part the federated server averages), read and written.
    """

    def __init__(self, n_clients: int, get_state: Callable[[int], dict], set_state: Callable[[int, State], None]):
        self.n_clients = n_clients
        self.get_state = get_state
        self.set_state = set_state
        self.global_state: dict = get_state(0)  # every client starts from the same adapter
        self.base: dict[int, State] = {}
        self.pending: dict[int, dict] = {}

    @property
    def n_values(self) -> int:
        """Values in the adapter the server averages."""
        return sum(t.numel() for t in self.global_state.values())

    def set_global(self, state: State) -> None:
        """A new global adapter, given to every client."""
        self.global_state = dict(state)
        self.reset_all()

    def reset_all(self) -> None:
        """Every client back on the global adapter (cut clients' work is dropped)."""
        for k in range(self.n_clients):
            self.set_state(k, self.global_state)

    def begin(self, client: int) -> None:
        """``client`` starts from the newest global adapter, which becomes its base."""
        self.set_state(client, self.global_state)
        self.base[client] = self.global_state

    def base_of(self, client: int) -> State:
        """The global adapter ``client`` started from (the initial one if it never began)."""
        return self.base.get(client, self.global_state)

    def mix(self, upload: State, weight: float) -> None:
        """FedAsync: global <- (1 - weight) global + weight upload."""
        self.global_state = mix_state_dicts(self.global_state, upload, weight)

    def buffer(self, client: int, upload: State, key: int) -> None:
        """FedBuff: keep ``upload`` minus the client's base as update ``key``."""
        self.pending[key] = state_delta(upload, self.base_of(client))

    def apply_buffer(self, weights: Mapping[int, float]) -> None:
        """FedBuff: global <- global + sum_key weights[key] update_key; those updates leave the buffer."""
        keys = sorted(weights)
        self.global_state = apply_deltas(self.global_state, [self.pending.pop(key) for key in keys],
                                         [weights[key] for key in keys])


def versions_state(versions: AdapterVersions) -> dict:
    """Each client's base adapter and FedBuff's buffer, as plain data (for a checkpoint)."""
    return {"bases": dict(versions.base), "pending": dict(versions.pending)}


def load_versions_state(versions: AdapterVersions, state: dict) -> None:
    """Put back what :func:`versions_state` kept (absent keys: nothing kept)."""
    versions.base = {int(k): dict(v) for k, v in state.get("bases", {}).items()}
    versions.pending = {int(k): dict(v) for k, v in state.get("pending", {}).items()}


def fields_of(obj) -> dict:
    """A dataclass's fields as a dict, its tensors not copied."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
