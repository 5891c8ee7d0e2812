"""``cosim optimize``: every allocation policy on a scenario's radio and measured cost table.

Builds the joint problem of ``solver`` from the scenario (the clients' gains as
the base station would know them, device and server FLOP/s, power limits) and a
cost table measured by ``cosim profile``, runs each policy of
``solver.POLICIES``, and reports their decisions and predicted delays side by
side. Torch is only needed when the cost table has to be measured here.
"""

from __future__ import annotations

import json

import numpy as np

import channel
import solver

from .energy import budgets_j, device_j_per_flop
from .errors import CosimError
from .radio import build_radio
from .devices import client_flops_per_s
from .scenario import Scenario
from .seeding import stream

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


def _solution_dict(sol: solver.Solution) -> dict:
    k = sol.power_w.shape[0]
    return {
        "cut": int(sol.cut), "rank": int(sol.rank),
        "round_delay_s": float(sol.round_delay_s), "rounds": float(sol.rounds),
        "total_delay_s": float(sol.total_delay_s),
        "subchannels_per_client": [int((sol.assignment == c).sum()) for c in range(k)],
        "power_w_per_client": [float(p) for p in sol.power_w.sum(axis=1)],
        "assignment": [int(a) for a in sol.assignment],
        "client_delay_s": [float(d) for d in sol.delays.total_s],
        "energy_j_per_client": [float(e) for e in sol.energy_j],
        "round_energy_j": float(sol.energy_j.sum()),
        "total_energy_j": float(sol.rounds * sol.energy_j.sum()),
    }


def optimize_scenario(sc: Scenario, costs: dict, *, knowledge: str = "average",
                      rounds_to_target: np.ndarray | None = None) -> dict:
    """Every policy's decision on ``sc``; fixed-cut policies use the scenario's cut and rank.

    ``rounds_to_target``: rounds(rank) per rank of ``costs`` (from a profile's
    pilot curves, :mod:`cosim.convergence`); None: ``training.rounds`` for every rank.
    """
    problem = build_problem(sc, costs, knowledge=knowledge, rounds_to_target=rounds_to_target)
    cut, rank = sc.split.cut_layer, sc.lora.rank
    if cut not in problem.costs.cuts or rank not in problem.costs.ranks:
        raise CosimError(f"the cost table lacks the scenario's split.cut_layer={cut} or lora.rank={rank} "
                         f"(cuts {list(problem.costs.cuts)}, ranks {list(problem.costs.ranks)}); profile them")
    out = {}
    for name, policy in solver.POLICIES.items():
        sol = policy(problem, cut=cut, rank=rank, rng=stream(sc.seed, "policy", name))
        out[name] = {**_solution_dict(applied_power(problem, sol, name, sc.allocation.power)), "policy": name}
    return {"scenario": sc.name, "knowledge": knowledge,
            "rounds_to_target": None if rounds_to_target is None else
            {int(r): float(n) for r, n in zip(problem.costs.ranks, rounds_to_target)},
            "policies": out}


def format_policies(result: dict) -> str:
    """One line per policy: decisions, delays and energy (per round summed over devices, the most any
    device spends in a round, and over the whole training)."""
    rows = [f"{'policy':<16} {'cut':>4} {'rank':>5} {'round s':>10} {'rounds':>7} {'total s':>11} "
            f"{'round J':>10} {'max dev J':>10} {'total J':>11}  subchannels"]
    for name, p in sorted(result["policies"].items(), key=lambda kv: kv[1]["total_delay_s"]):
        rows.append(f"{name:<16} {p['cut']:>4} {p['rank']:>5} {p['round_delay_s']:>10.3f} {p['rounds']:>7.0f} "
                    f"{p['total_delay_s']:>11.3f} {p['round_energy_j']:>10.3f} {max(p['energy_j_per_client']):>10.3f} "
                    f"{p['total_energy_j']:>11.1f}  {p['subchannels_per_client']}")
    return "\n".join(rows) + "\n"


def to_json(result: dict) -> str:
    return json.dumps(result, indent=2) + "\n"
