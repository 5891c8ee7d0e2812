"""The joint optimizer's output: a decision and the delays it gives."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True, eq=False, kw_only=True)
class DelayBreakdown:
    """Per-client delay of one round, by stage, in seconds; every array is (K,).

    The round delay of client k is ``total_s[k]`` and the round closes at the
    slowest client (``max_k total_s``).

    Attributes
    ----------
    compute_s : (K,) float, s
        ``I (F^cf + F^cb) / f_k``: client forward and backward over the I iterations.
    uplink_s : (K,) float, s
        ``I A / R_k``: activation uploads on the main set.
    server_s : (K,) float, s
        ``I F^srv / f_server``: main-server work, without queueing.
    downlink_s : (K,) float, s
        ``I G / R^dl_k``: gradient downloads.
    adapter_s : (K,) float, s
        ``D / R'_k``: the client adapter upload, once per round.
    """

    compute_s: np.ndarray
    uplink_s: np.ndarray
    server_s: np.ndarray
    downlink_s: np.ndarray
    adapter_s: np.ndarray

    @property
    def total_s(self) -> np.ndarray:
        """(K,) float, s: the round delay of each client (sum of the stages)."""
        return self.compute_s + self.uplink_s + self.server_s + self.downlink_s + self.adapter_s


@dataclass(frozen=True, eq=False, kw_only=True)
class Solution:
    """A feasible decision (subchannels, power, cut, rank) and its delays.

    Built only by :func:`solver.evaluate`, so every policy is scored by the same
    objective. Arrays are read-only.

    Attributes
    ----------
    assignment : (N,) int
        Client holding each main-set subchannel, -1 if unused.
    fed_assignment : (M,) int
        Client holding each federated-set subchannel, -1 if unused (M may be 0).
    power_w : (K, N) float, W
        Transmit power of each client on each main-set subchannel.
    fed_power_w : (K, M) float, W
        Transmit power on the federated-set subchannels.
    cut, rank : int
        Chosen split point and LoRA rank (values from the cost table).
    uplink_rate_bps : (K,) float, bit/s
        Rate on the client's main-set subchannels.
    adapter_rate_bps : (K,) float, bit/s
        Rate of the adapter upload (federated set, or the main set when M == 0).
    delays : DelayBreakdown
        Per-client delay of one round by stage.
    round_delay_s : float, s
        ``max_k delays.total_s[k]``.
    rounds : float
        Rounds to target for ``rank``.
    total_delay_s : float, s
        ``rounds * round_delay_s``: the objective.
    iterations : int
        Alternating-optimisation iterations run (0 for a non-iterative policy).
    objective_history_s : tuple of float, s
        Best objective after the start and after each iteration; non-increasing.
    policy : str
        Name of the policy that produced the decision.
    energy_j : (K,) float, J
        Each device's energy in one round: ``I (F^cf + F^cb) e_k`` (compute, when the
        problem gives ``device_j_per_flop``) ``+ (P_k + P_c) uplink_s + (P'_k + P_c) adapter_s``
        (transmit, P_k the device's total power on the set).
    """

    assignment: np.ndarray
    fed_assignment: np.ndarray
    power_w: np.ndarray
    fed_power_w: np.ndarray
    cut: int
    rank: int
    uplink_rate_bps: np.ndarray
    adapter_rate_bps: np.ndarray
    delays: DelayBreakdown
    round_delay_s: float
    rounds: float
    total_delay_s: float
    iterations: int = 0
    objective_history_s: tuple[float, ...] = ()
    policy: str = "evaluate"
    energy_j: np.ndarray | None = None

    def __post_init__(self):
        for value in (self.assignment, self.fed_assignment, self.power_w, self.fed_power_w,
                      self.uplink_rate_bps, self.adapter_rate_bps, self.energy_j):
            if value is not None:
                value.setflags(write=False)

    @property
    def bottleneck(self) -> int:
        """Index of the slowest client (the one that closes the round)."""
        return int(np.argmax(self.delays.total_s))

    def with_run(self, *, policy: str, iterations: int = 0,
                 objective_history_s: tuple[float, ...] | None = None) -> "Solution":
        """A copy labelled with the policy and its iteration record."""
        history = (self.total_delay_s,) if objective_history_s is None else tuple(objective_history_s)
        return replace(self, policy=policy, iterations=iterations, objective_history_s=history)
