"""The objective: one decision computed by hand, and every constraint violation named."""

import numpy as np
import pytest

from solver import CostTable, Problem, evaluate


@pytest.fixture
def problem():
    costs = CostTable(cuts=[3, 6], ranks=[4, 16], client_forward_flops=[[1e9, 2e9], [3e9, 4e9]],
                      client_backward_flops=[[2e9, 4e9], [6e9, 8e9]], server_flops=[[5e10, 5e10], [4e10, 4e10]],
                      activation_bytes=[1e5, 2e5], gradient_bytes=[5e4, 6e4],
                      client_adapter_bytes=[[1e4, 4e4], [2e4, 8e4]])
    return Problem(costs=costs, rounds_to_target=[100.0, 80.0], bandwidth_hz=[1e5, 2e5, 1e5],
                   gain_lin=[[1e-10, 2e-10, 3e-10], [4e-10, 5e-10, 6e-10]], noise_power_w=1e-14,
                   device_flops_per_s=[1e12, 2e12], server_flops_per_s=1e14, downlink_rate_bps=[1e7, 2e7],
                   max_power_w=[0.2, 0.1], local_iterations=3, total_power_w=0.25)


def test_delays_by_hand(problem):
    assignment = np.array([0, 1, 0])
    power = np.array([[0.05, 0.0, 0.1], [0.0, 0.1, 0.0]])
    solution = evaluate(problem, assignment, power, cut=6, rank=16)
    # Client 0: subchannels 0 and 2; client 1: subchannel 1 (cut index 1, rank index 1).
    rate0 = 1e5 * np.log2(1 + 0.05 * 1e4) + 1e5 * np.log2(1 + 0.1 * 3e4)
    rate1 = 2e5 * np.log2(1 + 0.1 * 5e4)
    d0 = 3 * ((4e9 + 8e9) / 1e12 + 8 * 2e5 / rate0 + 4e10 / 1e14 + 8 * 6e4 / 1e7) + 8 * 8e4 / rate0
    d1 = 3 * ((4e9 + 8e9) / 2e12 + 8 * 2e5 / rate1 + 4e10 / 1e14 + 8 * 6e4 / 2e7) + 8 * 8e4 / rate1
    np.testing.assert_allclose(solution.uplink_rate_bps, [rate0, rate1], rtol=1e-12)
    np.testing.assert_allclose(solution.adapter_rate_bps, solution.uplink_rate_bps)  # M == 0: one pool
    np.testing.assert_allclose(solution.delays.total_s, [d0, d1], rtol=1e-12)
    assert solution.delays.adapter_s[1] == pytest.approx(8 * 8e4 / rate1)
    assert solution.round_delay_s == pytest.approx(max(d0, d1))
    assert solution.total_delay_s == pytest.approx(80.0 * max(d0, d1))
    assert solution.bottleneck == int(np.argmax([d0, d1]))
    assert solution.fed_assignment.shape == (0,) and solution.fed_power_w.shape == (2, 0)
    with pytest.raises(ValueError):
        solution.power_w[0, 0] = 1.0  # the record is frozen, arrays too


@pytest.mark.parametrize("assignment, power, cut, rank, message", [
    ([0, 1, 0], [[0.05, 0.05, 0.1], [0, 0.1, 0]], 6, 16, "exclusivity constraint: client 0 transmits on main-set subchannel 1"),
    ([0, 1, 0], [[0.15, 0, 0.1], [0, 0.1, 0]], 6, 16, "per-device power constraint: client 0"),
    ([0, 1, 0], [[0.1, 0, 0.1], [0, 0.1, 0]], 6, 16, "total power constraint"),
    ([0, 0, 0], [[0.05, 0.05, 0.05], [0, 0, 0]], 6, 16, r"every client needs at least one main-set subchannel \(clients \[1\]"),
    ([0, 2, 0], [[0.05, 0, 0.05], [0, 0, 0]], 6, 16, r"assignment: expected client indices in \[-1, 1\]"),
    ([0, 1, 0], [[-0.1, 0, 0.1], [0, 0.1, 0]], 6, 16, "power_w: expected finite values >= 0"),
    ([0, 1, 0], [[0.05, 0, 0.1], [0, 0.1, 0]], 5, 16, r"cut: expected one of \[3, 6\] \(got 5\)"),
    ([0, 1, 0], [[0.05, 0, 0.1], [0, 0.1, 0]], 6, 8, r"rank: expected one of \[4, 16\] \(got 8\)"),
])
def test_violations_name_the_constraint(problem, assignment, power, cut, rank, message):
    with pytest.raises(ValueError, match=message):
        evaluate(problem, np.array(assignment), np.array(power, dtype=float), cut, rank)


def test_federated_arguments_must_match_the_problem(problem):
    with pytest.raises(ValueError, match="fed_assignment, fed_power_w: expected None"):
        evaluate(problem, np.array([0, 1, 0]), np.zeros((2, 3)), 3, 4, np.array([0, 1]), np.zeros((2, 2)))
