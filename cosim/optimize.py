"""``cosim optimize``: every allocation policy on a scenario's radio and measured cost table.

Builds the joint problem of ``solver`` from the scenario (the clients' gains as
the base station would know them, ``allocation.knowledge``; device and server
FLOP/s, power limits) and a cost table measured by ``cosim profile``, runs each
policy of ``solver.POLICIES``, and reports their decisions and *predicted*
delays side by side: the solver's model of one round at the decision's
channel, times rounds(rank). :func:`check_policies` replays each policy on the
scenario (the replay workload: the same cost table, the fading that actually
happens, the allocation re-decided as ``allocation.every`` says) and gives the
*realised* delays beside the predictions. Torch is only needed when the cost
table has to be measured here.
"""

from __future__ import annotations

import json
import math

import numpy as np

import channel
import solver

from .errors import CosimError
from .scenario import Scenario
from .problem import KNOWLEDGE, POWER_CONTROLLED, applied_power, build_problem  # noqa: F401 - re-exported
from .seeding import stream

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


def optimize_scenario(sc: Scenario, costs: dict, *, knowledge: str | None = None,
                      rounds_to_target: np.ndarray | None = None) -> dict:
    """Every policy's decision on ``sc``; fixed-cut policies use the scenario's cut and rank.

    ``knowledge``: the channel the policies see; None: the scenario's ``allocation.knowledge``
    (as ``cosim run`` decides). ``rounds_to_target``: rounds(rank) per rank of ``costs`` (from
    a profile's pilot curves, :mod:`cosim.convergence`); None: ``training.rounds`` for every rank.
    """
    knowledge = sc.allocation.knowledge if knowledge is None else knowledge
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


def rounds_from_profile(profile: dict, ranks) -> tuple[np.ndarray | None, dict]:
    """rounds(rank) for ``ranks`` from a profile's pilot curves, and what to record about them.

    Returns the rounds (None without a pilot) and ``{"target": ..., "rounds_source": {rank: {rounds, how,
    detail}}}`` (empty without a pilot) for the result of :func:`optimize_scenario`.
    """
    from .profile_file import profile_convergence

    conv = profile_convergence(profile)
    if conv is None:
        return None, {}
    detail = conv.rounds_detail(ranks)
    source = {int(r): {"rounds": d.rounds, "how": d.how, "detail": d.detail} for r, d in zip(ranks, detail)}
    return np.array([float(d.rounds) for d in detail]), {"target": conv.describe_target(), "rounds_source": source}


def check_policies(sc: Scenario, result: dict, profile_path, *, on_policy=None) -> dict:
    """Replay each policy of ``result`` on ``sc`` and add what it realised (``result`` is updated and returned).

    Each replay runs ``sc`` with the replay workload on ``profile_path``,
    ``allocation.policy`` set to the policy, ``allocation.knowledge`` to the one the
    predictions used, and as many rounds as the policy's rounds(rank). Adds, per policy,
    ``realised_round_s`` (mean round duration), ``realised_total_s`` (the run's total
    simulated time) and ``realised_over_predicted``.
    """
    import dataclasses
    import tempfile
    from pathlib import Path

    import pandas as pd

    from .run import run_scenario
    from .scenario.schema import Workload

    with tempfile.TemporaryDirectory(prefix="cosim-check-") as tmp:
        for name, p in result["policies"].items():
            if on_policy is not None:
                on_policy(name)
            run_sc = dataclasses.replace(
                sc, workload=Workload(kind="replay", profile=str(profile_path)),
                allocation=dataclasses.replace(sc.allocation, policy=name, knowledge=result["knowledge"]),
                training=dataclasses.replace(sc.training, rounds=max(1, int(math.ceil(p["rounds"]))), eval_every=0))
            out = Path(tmp) / name
            summary = run_scenario(run_sc, out)
            durations = pd.read_parquet(out / "rounds.parquet")["duration_s"]
            p["realised_round_s"] = float(durations.mean())
            p["realised_total_s"] = float(summary["total_time_s"])
            p["realised_over_predicted"] = p["realised_total_s"] / p["total_delay_s"]
    result["checked"] = True
    return result


def format_rounds(result: dict) -> str:
    """Where each rank's rounds(rank) comes from (pilot measured, extrapolated, interpolated ...)."""
    source = result.get("rounds_source")
    if not source:
        return "# rounds(rank): no pilot curves; every rank is taken to need training.rounds\n"
    lines = [f"# rounds(rank): {result.get('target', '')}"]
    lines += [f"#   rank {r:>4}: {s['rounds']:>4} rounds, {s['how']} ({s['detail']})" for r, s in source.items()]
    return "\n".join(lines) + "\n"


def format_policies(result: dict) -> str:
    """The policies side by side: decisions, predicted delays and energy (per round summed over devices, the
    most any device spends in a round, and over the whole training); realised delays after ``check_policies``."""
    checked = result.get("checked", False)
    head = (f"{'policy':<16} {'cut':>4} {'rank':>5} {'predicted':>10} {'rounds':>7} {'predicted':>11}"
            + (f" {'realised':>10} {'realised':>11} {'realised /':>10}" if checked else "")
            + f" {'predicted':>10} {'predicted':>10} {'predicted':>11}  subchannels")
    head2 = (f"{'':<16} {'':>4} {'':>5} {'round s':>10} {'':>7} {'total s':>11}"
             + (f" {'round s':>10} {'total s':>11} {'predicted':>10}" if checked else "")
             + f" {'round J':>10} {'max dev J':>10} {'total J':>11}")
    rows = [f"# knowledge: {result['knowledge']} (the channel the decisions see); predicted: the solver's "
            f"model of a round on that channel x rounds(rank)"
            + ("; realised: replayed on the scenario's fading" if checked else ""), head, head2]
    for name, p in sorted(result["policies"].items(), key=lambda kv: kv[1]["total_delay_s"]):
        rows.append(f"{name:<16} {p['cut']:>4} {p['rank']:>5} {p['round_delay_s']:>10.3f} {p['rounds']:>7.0f} "
                    f"{p['total_delay_s']:>11.3f}"
                    + (f" {p['realised_round_s']:>10.3f} {p['realised_total_s']:>11.3f} "
                       f"{p['realised_over_predicted']:>10.3f}" if checked else "")
                    + f" {p['round_energy_j']:>10.3f} {max(p['energy_j_per_client']):>10.3f} "
                      f"{p['total_energy_j']:>11.1f}  {p['subchannels_per_client']}")
    return "\n".join(rows) + "\n"


def to_json(result: dict) -> str:
    return json.dumps(result, indent=2) + "\n"
