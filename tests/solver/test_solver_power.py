"""Power control for a fixed assignment: closed form, certificates, scipy.optimize."""

import dataclasses

import numpy as np
import pytest
from scipy.optimize import minimize

from solver.baselines import contiguous_assignment
from solver.links import build_links
from solver.objective import round_terms, transfer_s
from solver.power import full_power, full_power_round_delay_s, optimal_power
from solver.waterfilling import shannon_rate


def _setup(problem, ci=1, ri=1):
    k = problem.num_clients
    assignment = contiguous_assignment(k, problem.num_subchannels)
    fed = contiguous_assignment(k, problem.num_fed_subchannels) if problem.num_fed_subchannels else None
    terms = round_terms(problem)
    links = build_links(problem, assignment, fed)
    return assignment, fed, terms, links, optimal_power(problem, links, terms, ci, ri)


def _delays(problem, terms, power, fed_power, ci=1, ri=1):
    rate = shannon_rate(power, problem.snr_per_w, problem.bandwidth_hz)
    if problem.num_fed_subchannels:
        fed_rate = shannon_rate(fed_power, problem.fed_snr_per_w, problem.fed_bandwidth_hz)
    else:
        fed_rate = rate
    return (terms.fixed_s[ci, ri] + transfer_s(terms.uplink_bits[ci], rate)
            + transfer_s(terms.adapter_bits[ci, ri], fed_rate))


def _scipy_round_delay_s(problem, assignment, fed, terms, ci=1, ri=1):
    """min_p max_k d_k by SLSQP on the epigraph form, in scaled variables, from equal power."""
    k, limit = problem.num_clients, problem.max_power_w
    sets = [(assignment, problem.total_power_w)]
    if fed is not None:
        sets.append((fed, problem.fed_total_power_w))
    slots = [np.flatnonzero(a >= 0) for a, _ in sets]
    sizes = [s.size for s in slots]
    t_ref = float(np.max(full_power_round_delay_s(terms, build_links(problem, assignment, fed))[ci, ri]))

    def unpack(x):
        powers, at = [], 0
        for (owner, _), slot, size in zip(sets, slots, sizes):
            p = np.zeros((k, owner.size))
            p[owner[slot], slot] = x[at:at + size] * limit[owner[slot]]
            powers.append(p)
            at += size
        return powers + [None] * (2 - len(powers)), x[-1]

    def delay_gap(x):
        (power, fed_power), t = unpack(x)
        return t - _delays(problem, terms, power, fed_power, ci, ri) / t_ref

    constraints = [{"type": "ineq", "fun": delay_gap}]
    for w, (owner, total) in enumerate(sets):
        constraints.append({"type": "ineq", "fun": lambda x, w=w: 1 - unpack(x)[0][w].sum(axis=1) / limit})
        if total is not None:
            constraints.append({"type": "ineq", "fun": lambda x, w=w, total=total: 1 - unpack(x)[0][w].sum() / total})
    start = np.concatenate([np.full(size, 0.5 / np.bincount(owner[owner >= 0])[owner[slot]])
                            for (owner, _), slot, size in zip(sets, slots, sizes)] + [np.array([20.0])])
    result = minimize(lambda x: x[-1], start, method="SLSQP", constraints=constraints,
                      bounds=[(0, 1)] * sum(sizes) + [(0, None)], options={"ftol": 1e-14, "maxiter": 2000})
    (power, fed_power), _ = unpack(result.x)
    assert np.all(power.sum(axis=1) <= limit * (1 + 1e-6))
    return float(np.max(_delays(problem, terms, power, fed_power, ci, ri)))


def _check_limits(problem, plan):
    limit = problem.max_power_w * (1 + 1e-9)
    assert np.all(plan.power_w >= 0) and np.all(plan.power_w.sum(axis=1) <= limit)
    assert np.all(plan.fed_power_w.sum(axis=1) <= limit)
    if problem.total_power_w is not None:
        assert plan.power_w.sum() <= problem.total_power_w * (1 + 1e-9)
    if problem.fed_total_power_w is not None:
        assert plan.fed_power_w.sum() <= problem.fed_total_power_w * (1 + 1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_without_total_limit_the_slowest_client_is_at_full_power(make_problem, seed):
    problem = make_problem(np.random.default_rng(seed), 3, 6)
    _, _, terms, links, plan = _setup(problem)
    bits = terms.uplink_bits[1] + terms.adapter_bits[1, 1]
    full_power_delay = terms.fixed_s[1, 1] + bits / links.max_rate_bps  # closed form
    assert plan.round_delay_s == pytest.approx(full_power_delay.max(), rel=1e-12)
    delays = _delays(problem, terms, plan.power_w, None)
    np.testing.assert_allclose(delays, plan.round_delay_s, rtol=1e-9)  # the others finish together ...
    slowest = np.argmax(full_power_delay)
    others = np.arange(3) != slowest
    assert np.all(plan.power_w.sum(axis=1)[others] < problem.max_power_w[others])  # ... on less power
    _check_limits(problem, plan)


@pytest.mark.parametrize("seed", range(3))
def test_full_power_spends_every_budget_and_keeps_the_round_delay(make_problem, seed):
    problem = make_problem(np.random.default_rng(seed), 3, 6)
    assignment, _, terms, links, plan = _setup(problem)
    power = full_power(problem, assignment)
    np.testing.assert_allclose(power.sum(axis=1), problem.max_power_w, rtol=1e-12)
    for k in range(3):  # only on the client's own subchannels
        assert np.all(power[k, assignment != k] == 0)
    # Each client's rate is the water-filled maximum: its delay is the full-power closed form,
    # the slowest sets the optimum's round delay and no client is slower than under least power.
    delays = _delays(problem, terms, power, None)
    bits = terms.uplink_bits[1] + terms.adapter_bits[1, 1]
    np.testing.assert_allclose(delays, terms.fixed_s[1, 1] + bits / links.max_rate_bps, rtol=1e-9)
    assert delays.max() == pytest.approx(plan.round_delay_s, rel=1e-9)
    assert np.all(delays <= _delays(problem, terms, plan.power_w, None) * (1 + 1e-12))


@pytest.mark.parametrize("seed", range(3))
def test_binding_total_limit_is_optimal(make_problem, seed):
    problem = make_problem(np.random.default_rng(10 + seed), 2, 4, total=True)
    problem = dataclasses.replace(problem, total_power_w=0.3 * problem.max_power_w.sum())
    assignment, _, terms, links, plan = _setup(problem)
    _check_limits(problem, plan)
    assert plan.power_w.sum() == pytest.approx(problem.total_power_w, rel=1e-9)  # binding
    assert np.max(_delays(problem, terms, plan.power_w, None)) <= plan.round_delay_s * (1 + 1e-9)
    # Certificate: a slightly shorter round needs more than the total (least power per client).
    shorter = plan.round_delay_s * (1 - 1e-6)
    bits = terms.uplink_bits[1] + terms.adapter_bits[1, 1]
    need = links.main.min_power(bits / (shorter - terms.fixed_s[1, 1]))[0]
    assert need.sum() > problem.total_power_w
    assert plan.round_delay_s == pytest.approx(_scipy_round_delay_s(problem, assignment, None, terms), rel=1e-5)


@pytest.mark.parametrize("totals", [(False, False), (True, False), (False, True), (True, True)])
def test_two_sets_match_scipy(make_problem, totals):
    problem = make_problem(np.random.default_rng(20), 2, 3, m=2, total=totals[0], fed_total=totals[1])
    assignment, fed, terms, links, plan = _setup(problem)
    _check_limits(problem, plan)
    delays = _delays(problem, terms, plan.power_w, plan.fed_power_w)
    assert np.max(delays) == pytest.approx(plan.round_delay_s, rel=1e-9)
    assert plan.round_delay_s == pytest.approx(_scipy_round_delay_s(problem, assignment, fed, terms), rel=1e-5)
