"""The clients' links for a fixed subchannel assignment: water-filling per client."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.problem import Problem
from solver.waterfilling import WaterFilling


@dataclass(frozen=True, eq=False)
class Links:
    """Each client's subchannels on the main (and federated) set, ready to solve.

    Attributes
    ----------
    main : WaterFilling
        K rows over the N main-set subchannels (SNR 0 where not held).
    fed : WaterFilling or None
        K rows over the M federated-set subchannels; None when M == 0.
    max_rate_bps : (K,) float, bit/s
        Main-set rate at the per-device limit ``max_power_w`` (water-filling).
    fed_max_rate_bps : (K,) float, bit/s
        Federated-set rate at ``max_power_w``; equals ``max_rate_bps`` when M == 0.
    """

    main: WaterFilling
    fed: WaterFilling | None
    max_rate_bps: np.ndarray
    fed_max_rate_bps: np.ndarray


def held_snr(snr_per_w: np.ndarray, assignment: np.ndarray) -> np.ndarray:
    """(K, W) SNR per watt with zeros where client k does not hold subchannel n."""
    holds = np.asarray(assignment)[None, :] == np.arange(snr_per_w.shape[0])[:, None]
    return np.where(holds, snr_per_w, 0.0)


def build_links(problem: Problem, assignment, fed_assignment=None) -> Links:
    """Water-filling structures and full-power rates for one assignment.

    Parameters
    ----------
    assignment : (N,) int
        Client of each main-set subchannel, -1 if unused.
    fed_assignment : (M,) int, optional
        Required when ``problem.num_fed_subchannels > 0``.
    """
    main = WaterFilling(held_snr(problem.snr_per_w, assignment), problem.bandwidth_hz)
    max_rate = main.max_rate(problem.max_power_w)[0]
    if problem.num_fed_subchannels:
        fed = WaterFilling(held_snr(problem.fed_snr_per_w, fed_assignment), problem.fed_bandwidth_hz)
        fed_max_rate = fed.max_rate(problem.max_power_w)[0]
    else:
        fed, fed_max_rate = None, max_rate
    return Links(main=main, fed=fed, max_rate_bps=max_rate, fed_max_rate_bps=fed_max_rate)
