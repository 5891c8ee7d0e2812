"""Energy per FLOP of each device and of the servers, from the scenario (the models live in ``channel.energy``).

An event's energy is then pure arithmetic: a compute step's is its FLOPs times
its machine's J/FLOP (:func:`compute_energy_j`), a transfer's is carried by the
link's record (``channel.Transfer.energy_j``: transmit plus circuit power times
its duration; for a downlink or broadcast that is the base station's energy).
"""

from __future__ import annotations

import numpy as np

import channel

from .scenario import Scenario
from .scenario.schema import per_client


def _device_flops_per_s(sc: Scenario, k: int) -> float:
    c = sc.compute
    if c.client_flops_per_s is not None:
        return per_client(c.client_flops_per_s, k)
    return per_client(c.client_clock_hz, k) * c.client_flops_per_cycle * c.client_efficiency


def device_clock_hz(sc: Scenario, k: int) -> float:
    """Client ``k``'s clock f, Hz: ``compute.client_clock_hz``, or FLOP/s / (FLOPs per cycle x efficiency)."""
    c = sc.compute
    if c.client_clock_hz is not None:
        return per_client(c.client_clock_hz, k)
    return _device_flops_per_s(sc, k) / (c.client_flops_per_cycle * c.client_efficiency)


def device_j_per_flop(sc: Scenario) -> list[float]:
    """Each device's compute energy per FLOP, J (``energy.compute_model``).

    ``j_per_flop``: ``energy.device_j_per_flop``. ``kappa``: ``kappa f^2 / phi`` with
    phi the FLOPs per cycle the device achieves, ``compute.client_flops_per_cycle x
    compute.client_efficiency`` (so ``F / phi`` are the cycles it spends).
    """
    e, c = sc.energy, sc.compute
    out = []
    for k in range(sc.clients.count):
        if e.compute_model == "kappa":
            phi = c.client_flops_per_cycle * c.client_efficiency
            out.append(float(channel.kappa_j_per_flop(e.kappa, device_clock_hz(sc, k), phi)))
        else:
            out.append(per_client(e.device_j_per_flop, k))
    return out


def server_j_per_flop(sc: Scenario) -> float:
    """The main and federated servers' energy per FLOP, J."""
    return float(sc.energy.server_j_per_flop)


def compute_energy_j(flops: float, j_per_flop: float) -> float:
    """Energy of a compute step: ``flops x j_per_flop``, J."""
    return float(channel.compute_energy_j(flops, j_per_flop))


def budgets_j(sc: Scenario) -> list[float] | None:
    """Each device's energy budget per round (``energy.budget_j``), J; None if unset."""
    b = sc.energy.budget_j
    return None if b is None else [per_client(b, k) for k in range(sc.clients.count)]


def energy_totals(events, n_clients: int) -> dict:
    """The run's energy from its events (``events.parquet``): per device, devices, servers, base station (J),
    and the transfers' retransmissions."""
    # numpy on the columns: a groupby on a string column of millions of rows is slow
    of = events["energy_of"].to_numpy(dtype=object)
    energy = events["energy_j"].to_numpy(dtype=float)
    by = {name: float(energy[of == name].sum()) for name in ("device", "server", "base_station")}
    mine = of == "device"
    device = np.bincount(events["client"].to_numpy()[mine], energy[mine], minlength=n_clients)
    return {
        "devices_j": float(by.get("device", 0.0)),
        "per_device_j": [float(device[k]) for k in range(n_clients)],
        "servers_j": float(by.get("server", 0.0)),
        "base_station_j": float(by.get("base_station", 0.0)),
        "retransmissions": int(events["retransmissions"].sum()),
    }
