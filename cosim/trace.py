"""The trace recorder: one row per event, one row per round, with fixed columns and dtypes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

# Column -> pandas dtype of events.parquet. README "Output files" documents each one.
EVENT_COLUMNS = {
    "run": "string",
    "round": "int64",
    "iteration": "int64",      # local iteration; -1 for per-round events
    "client": "int64",         # -1 for the federated server
    "kind": "string",
    "t_start_s": "float64",
    "t_end_s": "float64",
    "duration_s": "float64",   # exact; t_end_s - t_start_s may differ in the last bits
    "flops": "float64",
    "bytes": "int64",
    "rate_bps": "float64",     # mean rate of a transfer: bits / duration
    "snr_db": "float64",       # link SNR in the block where the transfer starts
    "n_subchannels": "int64",
    "power_w": "float64",      # transmit power of a transfer summed over its subchannels
    "loss": "float64",         # training loss of a server step
    "cut": "bool",             # the event was cut short (deadline, over-selection, the device going offline):
                               # it ends at the cut, with the FLOPs done / bytes delivered by then, and its
                               # work never took effect
    "energy_j": "float64",     # energy of the event: compute FLOPs x J/FLOP; a transfer (transmit + circuit
                               # power) x duration (a multicast's split evenly over its receivers' rows)
    "energy_of": "string",     # who spends it: device | server | base_station (empty: nobody, e.g. a queue)
    "retransmissions": "int64",  # transport blocks sent again in a transfer (link.rate_model: mcs), else 0
    "distance_m": "float64",   # the device's distance to the base station when a transfer starts (NaN otherwise)
}

ROUND_COLUMNS = {
    "run": "string",
    "round": "int64",
    "t_start_s": "float64",
    "t_end_s": "float64",
    "duration_s": "float64",
    "train_loss": "float64",   # mean loss of the round's completed training steps
    "uplink_bytes": "int64",
    "downlink_bytes": "int64",
    "clients": "int64",        # clients selected for the round (asynchronous: updates folded in)
    "included": "int64",       # clients whose update is in the round's average
    "closed_by": "string",     # barrier | deadline | over_selection | all_done (every client ended before a
                               # deadline or quota) | fedasync | fedbuff
    "version": "int64",        # the global adapter's version after the round (+1 per aggregation)
    "mean_staleness": "float64",  # asynchronous: mean staleness of the updates folded in (NaN otherwise)
    "predicted_s": "float64",  # the allocation policy's predicted round delay (NaN for 'equal')
    "accuracy": "float64",     # held-out, where evaluated (eval_every), else NaN
    "eval_loss": "float64",
    "cut": "Int64",            # the round's cut and LoRA rank (split learning; <NA> where not recorded)
    "rank": "Int64",
    "sparsity": "float64",     # mean fraction of the adapter withheld from the upload (0: dense)
    "virtual_queue": "float64",  # TSFA's latency queue Q after the round, s (NaN for other strategies)
}

# One row per round and client: clients.parquet.
CLIENT_COLUMNS = {
    "run": "string",
    "round": "int64",
    "client": "int64",
    "status": "string",            # aggregated | late (finished after the first K under over-selection) |
                                   # deadline | over_selection | offline (cut) | stale (FedBuff dropped it) |
                                   # end (the asynchronous run ended first) | missed (offline at its SL turn)
    "latency_s": "float64",        # its start -> the adapter upload finished (or the cut)
    "compute_s": "float64",        # simulated compute time of the client in the round
    "adapter_upload_s": "float64",  # its adapter upload (the cut activations are in uplink_bytes, not here)
    "uplink_bytes": "int64",       # everything it sent up in the round (cut activations and adapter)
    "adapter_bytes": "int64",      # the adapter upload as sent (values + indices)
    "sparsity": "float64",         # fraction of the adapter's values withheld (0: dense)
    "n_subchannels": "int64",
    "bandwidth_share": "float64",  # n_subchannels / channel.n_subchannels
    "virtual_queue": "float64",    # TSFA's queue Q at the round's start, s (NaN for other strategies)
    "base_version": "int64",       # the global adapter version its work started from
    "staleness": "float64",        # global versions between its base and the aggregation that took it (NaN: none)
    "weight": "float64",           # its weight in that aggregation (FedAvg's n_k / sum n; FedAsync alpha s(tau);
                                   # FedBuff lr s(tau) / M); NaN when it was not aggregated
    "energy_j": "float64",         # the device's energy in the round: its compute and its uplink transmissions
    "transmit_energy_j": "float64",  # the transmissions' part of energy_j
}

NAN = math.nan

# The event columns a row tuple holds, in order ("run" is the same for every row).
EVENT_FIELDS = tuple(c for c in EVENT_COLUMNS if c != "run")
STRING_FIELDS = tuple(c for c in EVENT_FIELDS if EVENT_COLUMNS[c] == "string")
ORDER = "__order__"  # a block's key for the order of its rows (Recorder.add_events)
# Kinds whose bytes cross the radio towards the base station / towards the devices.
UPLINK_KINDS = frozenset({"uplink", "adapter_upload"})
DOWNLINK_KINDS = frozenset({"downlink", "broadcast", "model_download"})


@dataclass(frozen=True)
class Codes:
    """A string column as integer codes into ``categories``: how a vectorised replay hands over its kinds
    (millions of rows of a few distinct strings, never a Python object per row)."""

    codes: np.ndarray
    categories: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, index) -> "Codes":
        return Codes(self.codes[index], self.categories)

    def isin(self, values) -> np.ndarray:
        return np.isin(self.codes, [i for i, c in enumerate(self.categories) if c in values])

    def strings(self) -> np.ndarray:
        return np.asarray(self.categories, dtype=object)[self.codes]

    @classmethod
    def of(cls, value, n: int) -> "Codes":
        """``value`` (a string repeated ``n`` times, a sequence of strings, or codes) as codes."""
        if isinstance(value, Codes):
            return value
        if isinstance(value, str):
            return cls(np.zeros(n, dtype=np.int32), (value,))
        codes, uniques = pd.factorize(np.asarray(value, dtype=object))
        return cls(codes.astype(np.int32), tuple(uniques))

    @classmethod
    def concat(cls, parts: list["Codes"]) -> "Codes":
        vocab: dict[str, int] = {}
        codes = [np.array([vocab.setdefault(c, len(vocab)) for c in p.categories], dtype=np.int32)[p.codes]
                 if len(p.categories) else p.codes.astype(np.int32) for p in parts]
        return cls(np.concatenate(codes) if codes else np.zeros(0, dtype=np.int32), tuple(vocab))


@dataclass(frozen=True)
class Mark:
    """Where the recorder stood at a moment: rows so far and the running totals (see :meth:`Recorder.since`)."""

    n_events: int
    n_clients: int
    uplink_bytes: int
    downlink_bytes: int
    losses: dict


class Recorder:
    """Collects rows as the simulation runs; ``events()`` / ``rounds()`` / ``clients()`` give typed DataFrames.

    Event rows are kept as tuples (``EVENT_FIELDS`` order) or, from a vectorised replay, as blocks of
    columns (:meth:`add_events`); running totals (bytes per direction, losses per kind, each device's
    energy) are kept as rows arrive, so a round's figures never scan the trace.
    """

    def __init__(self, run: str):
        self.run = run
        self._segments: list = [[]]      # lists of row tuples and dicts of column arrays, in order
        self._n_events = 0
        self.round_rows: list[dict] = []
        self.client_rows: list[dict] = []
        # Wall-clock seconds of the real work per event kind. Kept out of the events table,
        # which must be identical run to run.
        self.wall_s: dict[str, float] = {}
        self._uplink_bytes = 0
        self._downlink_bytes = 0
        self._losses: dict[str, list] = {}        # kind -> [sum, count] of completed steps' losses
        self._energy: dict[int, list] = {}        # device -> [energy, transmit energy], J

    @property
    def n_events(self) -> int:
        return self._n_events

    def event(self, *, round: int, client: int, kind: str, t_start_s: float, duration_s: float,
              iteration: int = -1, flops: float = 0.0, nbytes: int = 0, rate_bps: float = NAN,
              snr_db: float = NAN, n_subchannels: int = 0, power_w: float = NAN, loss: float | None = None,
              wall_s: float = 0.0, cut: bool = False, energy_j: float = 0.0, energy_of: str = "",
              retransmissions: int = 0, distance_m: float = NAN) -> None:
        nbytes = int(nbytes)
        self._segments[-1].append((
            round, iteration, client, kind, t_start_s, t_start_s + duration_s, duration_s, float(flops), nbytes,
            rate_bps, snr_db, n_subchannels, power_w, NAN if loss is None else float(loss), cut,
            float(energy_j), energy_of, int(retransmissions), float(distance_m)))
        self._n_events += 1
        if wall_s:
            self.wall_s[kind] = self.wall_s.get(kind, 0.0) + wall_s
        if kind in UPLINK_KINDS:
            self._uplink_bytes += nbytes
        elif kind in DOWNLINK_KINDS:
            self._downlink_bytes += nbytes
        if loss is not None and not cut:
            acc = self._losses.setdefault(kind, [0.0, 0])
            acc[0] += float(loss)
            acc[1] += 1
        if energy_of == "device" and energy_j:
            acc = self._energy.setdefault(client, [0.0, 0.0])
            acc[0] += energy_j
            if n_subchannels > 0:  # a transmission (compute rows hold no subchannel)
                acc[1] += energy_j

    def add_events(self, columns: dict, order: np.ndarray | None = None) -> None:
        """A block of event rows as columns (arrays or scalars broadcast to the block's length); the rows are
        in ``order`` (indices into the columns; None: as given). The order is applied when the trace is read,
        straight into its final columns: a replay of millions of rows copies each value once."""
        block = {c: columns[c] for c in EVENT_FIELDS}
        n = _len(block)
        if order is not None:
            block[ORDER] = np.asarray(order)
        self._segments.extend([block, []])
        self._n_events += n
        for c in STRING_FIELDS:
            block[c] = Codes.of(block[c], n)
        kinds, nbytes = block["kind"], _column(block["bytes"], n)
        self._uplink_bytes += int(nbytes[kinds.isin(UPLINK_KINDS)].sum())
        self._downlink_bytes += int(nbytes[kinds.isin(DOWNLINK_KINDS)].sum())
        device = block["energy_of"].isin(("device",))
        if device.any():
            clients = _column(block["client"], n)[device]
            energy = _column(block["energy_j"], n)[device]
            transmit = energy * (_column(block["n_subchannels"], n)[device] > 0)
            ids, where = np.unique(clients, return_inverse=True)
            for k, e, tx in zip(ids.tolist(), np.bincount(where, energy).tolist(),
                                np.bincount(where, transmit).tolist()):
                acc = self._energy.setdefault(k, [0.0, 0.0])
                acc[0] += e
                acc[1] += tx

    def mark(self) -> Mark:
        return Mark(self._n_events, len(self.client_rows), self._uplink_bytes, self._downlink_bytes,
                    {k: tuple(v) for k, v in self._losses.items()})

    def since(self, mark: Mark, loss_kind: str) -> dict:
        """Uplink and downlink bytes, and the mean loss of completed ``loss_kind`` steps, since ``mark``."""
        now = self._losses.get(loss_kind, (0.0, 0))
        then = mark.losses.get(loss_kind, (0.0, 0))
        n = now[1] - then[1]
        return {"uplink_bytes": self._uplink_bytes - mark.uplink_bytes,
                "downlink_bytes": self._downlink_bytes - mark.downlink_bytes,
                "train_loss": (now[0] - then[0]) / n if n else NAN}

    def device_energy_j(self, client: int) -> tuple[float, float]:
        """Client ``client``'s energy so far (total, transmit), J: the difference of two readings is an interval's."""
        acc = self._energy.get(client)
        return (acc[0], acc[1]) if acc else (0.0, 0.0)

    def state_dict(self) -> dict:
        """Every row and running total so far, as plain data (for a checkpoint)."""
        segments = [{c: _column(_ordered(seg, c), _len(seg)).tolist() for c in EVENT_FIELDS}
                    if isinstance(seg, dict) else [list(row) for row in seg] for seg in self._segments]
        return {"segments": segments, "n_events": self._n_events, "round_rows": self.round_rows,
                "client_rows": self.client_rows, "wall_s": self.wall_s, "uplink_bytes": self._uplink_bytes,
                "downlink_bytes": self._downlink_bytes, "losses": self._losses,
                "energy": {int(k): v for k, v in self._energy.items()}}

    def load_state_dict(self, state: dict) -> None:
        self._segments = [{c: np.asarray(v, dtype=object if EVENT_COLUMNS[c] == "string" else None)
                           for c, v in seg.items()} if isinstance(seg, dict) else [tuple(row) for row in seg]
                          for seg in state["segments"]]
        self._n_events = int(state["n_events"])
        self.round_rows = [dict(r) for r in state["round_rows"]]
        self.client_rows = [dict(c) for c in state["client_rows"]]
        self.wall_s = dict(state["wall_s"])
        self._uplink_bytes, self._downlink_bytes = int(state["uplink_bytes"]), int(state["downlink_bytes"])
        self._losses = {k: list(v) for k, v in state["losses"].items()}
        self._energy = {int(k): list(v) for k, v in state["energy"].items()}

    def round(self, **row) -> None:
        self.round_rows.append({"run": self.run, "sparsity": 0.0, "virtual_queue": NAN, "mean_staleness": NAN, **row})

    def client(self, **row) -> None:
        self.client_rows.append({"run": self.run, "sparsity": 0.0, "virtual_queue": NAN, "staleness": NAN,
                                 "weight": NAN, "energy_j": NAN, "transmit_energy_j": NAN, **row})

    def events(self) -> pd.DataFrame:
        """Every event row, typed as ``EVENT_COLUMNS``: built column by column (no frame per block, no
        Python object per string), so millions of replayed rows take about a second."""
        blocks = []
        for seg in self._segments:
            if isinstance(seg, dict):
                blocks.append((seg, _len(seg)))
            elif seg:
                blocks.append((dict(zip(EVENT_FIELDS, map(list, zip(*seg)))), len(seg)))
        if not blocks:
            return pd.DataFrame(columns=list(EVENT_COLUMNS)).astype(EVENT_COLUMNS)
        n = sum(m for _, m in blocks)
        columns = {"run": _string_array(Codes.of(self.run, n))}
        for c in EVENT_FIELDS:
            if EVENT_COLUMNS[c] == "string":
                columns[c] = _string_array(Codes.concat([Codes.of(_ordered(b, c), m) for b, m in blocks]))
                continue
            out = columns[c] = np.empty(n, dtype=EVENT_COLUMNS[c])
            at = 0
            for b, m in blocks:
                value, order = b[c], b.get(ORDER)
                if order is not None and isinstance(value, np.ndarray):
                    np.take(value, order, out=out[at:at + m])
                else:
                    out[at:at + m] = value
                at += m
        return pd.DataFrame(columns, copy=False)

    def rounds(self) -> pd.DataFrame:
        return _frame(self.round_rows, ROUND_COLUMNS)

    def clients(self) -> pd.DataFrame:
        return _frame(self.client_rows, CLIENT_COLUMNS)


def _ordered(block: dict, c: str):
    """Column ``c`` of a block in its rows' order (a scalar stays a scalar)."""
    value, order = block[c], block.get(ORDER)
    if order is None or not hasattr(value, "__len__") or isinstance(value, str):
        return value
    return value[order]


def _len(block: dict) -> int:
    return max(len(v) for v in block.values() if hasattr(v, "__len__") and not isinstance(v, str))


def _string_array(codes: Codes) -> pd.api.extensions.ExtensionArray:
    """Codes as pandas' ``string`` column (Arrow's take of the few distinct strings)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pd.array(pc.take(pa.array(list(codes.categories), type=pa.large_string()), codes.codes),
                    dtype=EVENT_COLUMNS["kind"])


def _column(value, n: int) -> np.ndarray:
    """``value`` as an array of length ``n`` (a scalar is repeated; codes become their strings)."""
    if isinstance(value, Codes):
        return value.strings()
    if hasattr(value, "__len__") and not isinstance(value, str):
        return np.asarray(value)
    return np.full(n, value, dtype=object if isinstance(value, str) else None)


def _frame(rows: list[dict], columns: dict[str, str]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(columns))
    return df.astype(columns)
