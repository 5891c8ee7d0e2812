"""The FedsLLM joint problem of a scenario: gains as the base station knows them, costs, limits; and a decision
as the run applies it.

Below what needs it (the allocation policies inside a run, ``cosim optimize``).
"""

from __future__ import annotations

import numpy as np

import channel
import solver

from .devices import client_flops_per_s
from .energy import budgets_j, device_j_per_flop
from .errors import CosimError
from .radio import build_radio
from .scenario import Scenario


KNOWLEDGE = ("average", "current")


def build_problem(sc: Scenario, costs: dict, *, knowledge: str = "average", radios=None, t_s: float = 0.0,
                  rounds_to_target: np.ndarray | None = None) -> solver.Problem:
    """The FedsLLM problem of scenario ``sc`` with the cost table ``costs`` (CostTable fields).

    ``knowledge``: ``"average"`` gives the optimizer the large-scale gains only
    (E|h|^2 = 1), ``"current"`` the gains of the fading block at time ``t_s``.
    ``radios``: the clients' current radios (default: the scenario's, built here).
    ``rounds_to_target`` (one per rank): without a measurement every rank is taken
    to need the scenario's ``training.rounds`` (the documented fallback), so the
    rank is then chosen for its delay alone. A moving device's large-scale gain is
    the one at ``t_s``. The energy settings (``energy.*``) give each decision its
    energy per device and round, and ``energy.budget_j`` the optimizer's budget.
    """
    if knowledge not in KNOWLEDGE:
        raise CosimError(f"--knowledge: expected one of {', '.join(KNOWLEDGE)} (got {knowledge!r})")
    ch = sc.channel
    radios = build_radio(sc) if radios is None else radios
    n = ch.n_subchannels
    def large_scale(r):
        track = r.uplink.large_scale
        return r.large_scale_gain_lin if track is None else track.gain_lin(r.uplink.fading.block_index(t_s))

    gain = np.array([[large_scale(r)] * n for r in radios])
    if knowledge == "current":
        gain = gain * np.array([r.uplink.fading.power_gain(r.uplink.fading.block_index(t_s)) for r in radios])
    table = solver.CostTable(**costs)
    if rounds_to_target is None:
        rounds_to_target = np.full(len(table.ranks), float(sc.training.rounds))
    noise_w = channel.noise_power_w(ch.subchannel_bandwidth_hz, noise_figure_db=ch.bs_noise_figure_db,
                                    noise_psd_dbm_per_hz=ch.noise_psd_dbm_per_hz)
    return solver.Problem(
        costs=table, rounds_to_target=np.asarray(rounds_to_target, dtype=float),
        bandwidth_hz=np.full(n, ch.subchannel_bandwidth_hz), gain_lin=gain, noise_power_w=np.full(n, noise_w),
        device_flops_per_s=np.array(client_flops_per_s(sc)), server_flops_per_s=sc.compute.server_flops_per_s,
        # The downlink is not optimised: each client's rate on its equal share of the band, now.
        downlink_rate_bps=np.array([r.downlink.rate_bps(r.downlink.fading.block_index(t_s)) for r in radios]),
        max_power_w=np.full(len(radios), float(channel.dbm_to_watt(sc.clients.max_power_dbm))),
        local_iterations=sc.training.local_iterations,
        device_j_per_flop=np.array(device_j_per_flop(sc)), circuit_power_w=sc.energy.device_circuit_power_w,
        energy_budget_j=None if budgets_j(sc) is None else np.array(budgets_j(sc)),
    )


#: Policies whose power comes from power control (the others spread each budget evenly).
POWER_CONTROLLED = ("resources_only", "optimizer")


def applied_power(problem: solver.Problem, sol: solver.Solution, policy: str, power: str) -> solver.Solution:
    """The decision as the run applies it (``allocation.power``).

    ``full``: a power-controlled policy's devices send their whole budgets, water-filled
    over their subchannels (:func:`solver.full_power`): the same round delay, every
    device but the slowest early. ``least`` (or a total power limit, which couples the
    budgets): the solver's own plan.
    """
    if (power != "full" or policy not in POWER_CONTROLLED or problem.total_power_w is not None
            or problem.energy_budget_j is not None):  # full power could break an energy budget
        return sol
    return solver.evaluate(problem, sol.assignment, solver.full_power(problem, sol.assignment),
                           int(sol.cut), int(sol.rank))
