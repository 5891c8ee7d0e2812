"""Water-filling: closed forms against scipy.optimize, KKT conditions, budgets."""

import numpy as np
import pytest
from scipy.optimize import minimize

from solver import WaterFilling, inverse_water_filling, water_filling
from solver.waterfilling import shannon_rate


def _channels(seed, width=5):
    rng = np.random.default_rng(seed)
    snr_per_w = 10 ** rng.uniform(1, 5, width) * rng.exponential(1.0, width)  # tens of dB apart
    bandwidth_hz = rng.choice([1e5, 2e5, 4e5], width)
    return snr_per_w, bandwidth_hz


def _level(power, snr, bandwidth):
    """The KKT water level (p_n + 1/a_n) / B_n of each subchannel."""
    return (power + 1 / snr) / bandwidth


@pytest.mark.parametrize("seed", range(6))
def test_water_filling_meets_kkt_and_spends_the_budget(seed):
    snr, bandwidth = _channels(seed)
    budget_w = [0.001, 0.05, 2.0][seed % 3]
    power = water_filling(budget_w, snr, bandwidth)
    active = power > 0
    assert power.sum() == pytest.approx(budget_w, rel=1e-12)
    level = _level(power, snr, bandwidth)[active]
    assert np.ptp(level) <= 1e-9 * level.mean()  # one water level on active subchannels
    # An inactive subchannel's floor 1/(B a) is at or above the level.
    assert np.all(1 / (bandwidth * snr)[~active] >= level.mean() * (1 - 1e-12))


@pytest.mark.parametrize("seed", range(4))
def test_water_filling_matches_scipy(seed):
    snr, bandwidth = _channels(seed, width=4)
    budget_w, total_hz = 0.1, bandwidth.sum()
    power = water_filling(budget_w, snr, bandwidth)
    # Scaled variables (share of the budget) and objective (bit/s/Hz) keep SLSQP well conditioned.
    result = minimize(lambda q: -shannon_rate(q * budget_w, snr, bandwidth) / total_hz, np.full(4, 0.25),
                      bounds=[(0, 1)] * 4, method="SLSQP", options={"ftol": 1e-13, "maxiter": 1000},
                      constraints=[{"type": "ineq", "fun": lambda q: 1 - q.sum()}])
    ours = shannon_rate(power, snr, bandwidth)
    assert ours >= shannon_rate(result.x * budget_w, snr, bandwidth) * (1 - 1e-12)
    assert ours == pytest.approx(-result.fun * total_hz, rel=1e-7)
    np.testing.assert_allclose(power, result.x * budget_w, atol=1e-4 * budget_w)


@pytest.mark.parametrize("seed", range(4))
def test_inverse_water_filling_is_least_power_for_the_rate(seed):
    snr, bandwidth = _channels(seed, width=4)
    rate_bps, total_hz = 4e6, bandwidth.sum()
    power = inverse_water_filling(rate_bps, snr, bandwidth)
    assert shannon_rate(power, snr, bandwidth) == pytest.approx(rate_bps, rel=1e-10)
    result = minimize(lambda p: p.sum(), np.full(4, 1.0), bounds=[(0, None)] * 4, method="SLSQP",
                      constraints=[{"type": "ineq",
                                    "fun": lambda p: (shannon_rate(p, snr, bandwidth) - rate_bps) / total_hz}],
                      options={"ftol": 1e-13, "maxiter": 1000})
    assert shannon_rate(result.x, snr, bandwidth) >= rate_bps * (1 - 1e-9)  # scipy's point is feasible
    assert power.sum() <= result.x.sum() * (1 + 1e-9)  # ... and never cheaper than ours
    assert power.sum() == pytest.approx(result.x.sum(), rel=1e-6)
    active = power > 0
    level = _level(power, snr, bandwidth)[active]
    assert np.ptp(level) <= 1e-9 * level.mean()


def test_max_rate_and_min_power_are_inverse_and_batched():
    rng = np.random.default_rng(7)
    snr = 10 ** rng.uniform(0, 4, (6, 5))
    snr[0, :3] = 0  # a row holding two subchannels
    bandwidth = np.full(5, 1.8e5)
    solver = WaterFilling(snr, bandwidth)
    budget = rng.uniform(0.01, 1, 6)
    rate, level = solver.max_rate(budget)
    np.testing.assert_allclose(shannon_rate(solver.allocation(level), snr, bandwidth), rate, rtol=1e-12)
    np.testing.assert_allclose(solver.min_power(rate)[0], budget, rtol=1e-10)
    assert np.all(solver.allocation(level)[0, :3] == 0)


def test_zero_rate_costs_nothing_and_no_subchannel_costs_infinity():
    solver = WaterFilling(np.array([[0.0, 0.0], [5.0, 1.0]]), np.array([1e5, 1e5]))
    power, _ = solver.min_power(np.array([1e5, 0.0]))
    assert power[0] == np.inf and power[1] == 0.0
    assert solver.max_rate(np.array([1.0, 0.0]))[0].tolist() == [0.0, 0.0]


def test_max_rate_plus_equals_solving_the_larger_set():
    rng = np.random.default_rng(3)
    for _ in range(50):
        width = int(rng.integers(0, 6))
        snr, bandwidth = 10 ** rng.uniform(-1, 4, width), rng.choice([1e5, 2e5], width)
        extra_snr, extra_bandwidth = 10 ** rng.uniform(-2, 5, 7), rng.choice([1e5, 3e5], 7)
        budget_w = 10 ** rng.uniform(-3, 0)
        fast = WaterFilling(snr[None, :], bandwidth).max_rate_plus(budget_w, extra_snr, extra_bandwidth)
        rows = np.concatenate([np.tile(snr, (7, 1)), extra_snr[:, None]], axis=1)
        widths = np.concatenate([np.tile(bandwidth, (7, 1)), extra_bandwidth[:, None]], axis=1)
        full = WaterFilling(rows, widths).max_rate(np.full(7, budget_w))[0]
        np.testing.assert_allclose(fast, full, rtol=1e-10)
