"""The devices' compute, from the scenario (one value for all, one per device, or clock x FLOPs per cycle).

Below everything that needs it (the run, the optimizer, TSFA): it imports only the scenario.
"""

from __future__ import annotations

from .scenario import Scenario
from .scenario.schema import per_client


def client_flops_per_s(sc: Scenario) -> list[float]:
    """Each device's effective FLOP/s: given directly, or clock x FLOPs per cycle x efficiency."""
    c, k = sc.compute, sc.clients.count

    if c.client_flops_per_s is not None:
        return [per_client(c.client_flops_per_s, i) for i in range(k)]
    return [per_client(c.client_clock_hz, i) * c.client_flops_per_cycle * c.client_efficiency for i in range(k)]
