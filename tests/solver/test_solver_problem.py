"""Problem and cost-table records: validation, broadcasting, infeasibility, imports."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from cosim.errors import CosimError, InfeasibleError
from solver import (CostTable, Problem, brute_force, equal_allocation, optimize_resources, optimize_split_rank,
                    random_allocation, solve)


def _costs(**overrides):
    fields = dict(cuts=[1, 2], ranks=[4, 8], client_forward_flops=np.ones((2, 2)),
                  client_backward_flops=np.ones((2, 2)), server_flops=np.ones((2, 2)),
                  activation_bytes=[1e3, 2e3], gradient_bytes=[1e3, 2e3], client_adapter_bytes=np.ones((2, 2)))
    fields.update(overrides)
    return CostTable(**fields)


def _problem(k=2, n=3, **overrides):
    fields = dict(costs=_costs(), rounds_to_target=[10.0, 8.0], bandwidth_hz=1e5, gain_lin=np.full((k, n), 1e-10),
                  noise_power_w=1e-14, device_flops_per_s=1e12, server_flops_per_s=1e14, downlink_rate_bps=1e7,
                  max_power_w=0.2, local_iterations=2)
    fields.update(overrides)
    return Problem(**fields)


def test_scalars_broadcast_and_arrays_are_read_only():
    problem = _problem()
    assert problem.bandwidth_hz.shape == (3,) and problem.max_power_w.shape == (2,)
    assert (problem.num_clients, problem.num_subchannels, problem.num_fed_subchannels) == (2, 3, 0)
    with pytest.raises(ValueError):
        problem.gain_lin[0, 0] = 1.0
    np.testing.assert_allclose(problem.snr_per_w, 1e4)


def test_every_problem_is_reported_together():
    with pytest.raises(ValueError) as error:
        _problem(max_power_w=[0.2, -1.0], local_iterations=0, bandwidth_hz=[1e5, 1e5],
                 rounds_to_target=[1.0], total_power_w=0.0)
    message = str(error.value)
    for name in ("max_power_w", "local_iterations", "bandwidth_hz", "rounds_to_target", "total_power_w"):
        assert name in message
    assert "(got -1.0)" in message and "(got 0)" in message


def test_cost_table_checks_shapes_signs_and_candidates():
    with pytest.raises(ValueError) as error:
        _costs(cuts=[1, 1], ranks=[0, 8], server_flops=np.ones((3, 2)), gradient_bytes=[-1.0, 1.0])
    message = str(error.value)
    assert "cuts: expected distinct values" in message and "ranks: expected every value >= 1" in message
    assert "server_flops: expected shape (2, 2)" in message and "gradient_bytes" in message


def test_federated_set_needs_all_three_arrays():
    with pytest.raises(ValueError, match="fed_bandwidth_hz, fed_gain_lin, fed_noise_power_w"):
        _problem(fed_gain_lin=np.ones((2, 2)))
    problem = _problem(fed_bandwidth_hz=1e5, fed_gain_lin=np.full((2, 2), 1e-10), fed_noise_power_w=1e-14)
    assert problem.num_fed_subchannels == 2
    assert dataclasses.replace(problem, total_power_w=0.1).num_fed_subchannels == 2
    assert dataclasses.replace(_problem(), total_power_w=0.1).num_fed_subchannels == 0


def test_candidate_lookup_names_the_argument():
    problem = _problem()
    assert problem.cut_index(2) == 1 and problem.rank_index(4) == 0
    with pytest.raises(ValueError, match=r"cut: expected one of \[1, 2\] \(got 7\)"):
        problem.cut_index(7)


@pytest.mark.parametrize("run", [
    lambda p: solve(p), lambda p: brute_force(p), lambda p: equal_allocation(p, 1, 4),
    lambda p: random_allocation(p, 1, 4, np.random.default_rng(0)), lambda p: optimize_resources(p, 1, 4),
    lambda p: optimize_split_rank(p)])
def test_more_clients_than_subchannels_is_infeasible(run):
    with pytest.raises(InfeasibleError, match=r"subchannel constraint.*K=4 clients and only N=3") as error:
        run(_problem(k=4, n=3))
    assert isinstance(error.value, CosimError)


def test_too_few_federated_subchannels_is_infeasible():
    problem = _problem(k=3, n=3, fed_bandwidth_hz=1e5, fed_gain_lin=np.full((3, 2), 1e-10), fed_noise_power_w=1e-14)
    with pytest.raises(InfeasibleError, match="federated subchannel constraint.*M=2"):
        solve(problem)


def test_solver_imports_neither_simpy_nor_torch():
    code = ("import sys, solver; bad = [m for m in sys.modules if m.split('.')[0] in ('simpy', 'torch')];"
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
