"""Who takes part in a round: a fraction of the devices online at its start, from its own seeded stream.

``participation.fraction`` of the online devices (at least one) are selected
for the round, uniformly at random or with probability proportional to their
large-scale gain (devices near the base station more often); under
over-selection (``aggregation.mode: over_selection``) ``over_selection`` times
as many are selected and the first of them to finish are aggregated. The
draw of round r comes from the stream ``("participation", r)``: it depends on
the seed, the round and who is online, on nothing else.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .seeding import stream


class Participation:
    """Selects each round's clients.

    Parameters
    ----------
    fraction : float
        Share of the online devices to aggregate, in (0, 1].
    by : {"uniform", "gain"}
        Uniform sampling without replacement, or weighted by ``gains`` (successive draws
        without replacement, each with probability proportional to the gain).
    gains : sequence of float
        Each device's large-scale gain (linear), for ``by="gain"``.
    over_selection : float
        Devices selected per device needed (FedScale's over-commitment), >= 1.
    seed : int
    """

    def __init__(self, *, fraction: float, by: str, gains: Sequence[float], over_selection: float = 1.0,
                 seed: int = 0):
        self.fraction = fraction
        self.by = by
        self.gains = np.asarray(gains, dtype=float)
        self.over_selection = over_selection
        self.seed = seed

    def needed(self, n_online: int) -> int:
        """Clients a round aggregates when ``n_online`` are online (0 if none)."""
        if n_online == 0:
            return 0
        return min(n_online, max(1, math.ceil(self.fraction * n_online - 1e-9)))

    def select(self, round_index: int, online: Sequence[int]) -> list[int]:
        """The clients of round ``round_index`` among ``online`` (sorted), over-selected where asked."""
        online = sorted(int(k) for k in online)
        n = min(len(online), math.ceil(self.needed(len(online)) * self.over_selection - 1e-9))
        if n == len(online):
            return online
        rng = stream(self.seed, "participation", round_index)
        if self.by == "gain":
            p = self.gains[online] / self.gains[online].sum()
            chosen = rng.choice(len(online), size=n, replace=False, p=p)
        else:
            chosen = rng.choice(len(online), size=n, replace=False)
        return sorted(online[i] for i in chosen)
