"""The trace recorder: one row per event, one row per round, with fixed columns and dtypes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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


@dataclass
class Recorder:
    """Collects rows as the simulation runs; ``events()`` / ``rounds()`` give typed DataFrames."""

    run: str
    event_rows: list[dict] = field(default_factory=list)
    round_rows: list[dict] = field(default_factory=list)
    client_rows: list[dict] = field(default_factory=list)
    # Wall-clock seconds of the real work per event kind. Kept out of the events table,
    # which must be identical run to run.
    wall_s: dict[str, float] = field(default_factory=dict)

    def event(self, *, round: int, client: int, kind: str, t_start_s: float, duration_s: float,
              iteration: int = -1, flops: float = 0.0, nbytes: int = 0, rate_bps: float = NAN,
              snr_db: float = NAN, n_subchannels: int = 0, power_w: float = NAN, loss: float | None = None,
              wall_s: float = 0.0, cut: bool = False, energy_j: float = 0.0, energy_of: str = "",
              retransmissions: int = 0, distance_m: float = NAN) -> None:
        self.event_rows.append({
            "run": self.run, "round": round, "iteration": iteration, "client": client, "kind": kind,
            "t_start_s": t_start_s, "t_end_s": t_start_s + duration_s, "duration_s": duration_s,
            "flops": float(flops), "bytes": int(nbytes), "rate_bps": rate_bps, "snr_db": snr_db,
            "n_subchannels": n_subchannels, "power_w": power_w,
            "loss": NAN if loss is None else float(loss), "cut": cut, "energy_j": float(energy_j),
            "energy_of": energy_of, "retransmissions": int(retransmissions), "distance_m": float(distance_m),
        })
        self.wall_s[kind] = self.wall_s.get(kind, 0.0) + wall_s

    def round(self, **row) -> None:
        self.round_rows.append({"run": self.run, "sparsity": 0.0, "virtual_queue": NAN, "mean_staleness": NAN, **row})

    def client(self, **row) -> None:
        self.client_rows.append({"run": self.run, "sparsity": 0.0, "virtual_queue": NAN, "staleness": NAN,
                                 "weight": NAN, "energy_j": NAN, "transmit_energy_j": NAN, **row})

    def device_energy_j(self, client: int, t_start_s: float, t_end_s: float) -> tuple[float, float]:
        """Client ``client``'s energy (total, transmit) in its events within ``[t_start_s, t_end_s]``, J.

        Rows are appended when events end, so the scan stops at the first row that ended before ``t_start_s``.
        """
        total = transmit = 0.0
        for row in reversed(self.event_rows):
            if row["t_end_s"] < t_start_s:
                break
            if row["client"] == client and row["energy_of"] == "device" and row["t_start_s"] <= t_end_s:
                total += row["energy_j"]
                if row["n_subchannels"] > 0:  # a transmission (compute rows hold no subchannel)
                    transmit += row["energy_j"]
        return total, transmit

    def events(self) -> pd.DataFrame:
        return _frame(self.event_rows, EVENT_COLUMNS)

    def rounds(self) -> pd.DataFrame:
        return _frame(self.round_rows, ROUND_COLUMNS)

    def clients(self) -> pd.DataFrame:
        return _frame(self.client_rows, CLIENT_COLUMNS)


def _frame(rows: list[dict], columns: dict[str, str]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(columns))
    return df.astype(columns)
