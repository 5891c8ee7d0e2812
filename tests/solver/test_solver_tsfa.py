"""TSFA's decisions against hand calculations, closed forms and brute force."""

from __future__ import annotations

import numpy as np
import pytest

from cosim.errors import InfeasibleError
from solver import TsfaDecision, VirtualQueue, offline_rank, shares_to_subchannels, tsfa_decision
from solver.fdma import share_for_rate, uplink_rate_bps

NOISE_PSD_W_PER_HZ = 10 ** ((-174 + 5) / 10) * 1e-3  # -174 dBm/Hz, 5 dB noise figure
BANDWIDTH_HZ = 10e6


def random_round(rng: np.random.Generator, k: int) -> dict:
    """One round's inputs: gains spanning 25 dB, heterogeneous payloads and compute."""
    return dict(
        dense_bits=rng.uniform(1e6, 8e6, k),
        compute_s=rng.uniform(0.2, 2.0, k),
        gains=10 ** rng.uniform(-13, -10.5, k),
        powers_w=0.2,
        noise_psd_w_per_hz=NOISE_PSD_W_PER_HZ,
        bandwidth_hz=BANDWIDTH_HZ,
        fixed_s=0.1,
        weights=rng.dirichlet(np.ones(k)),
        rho_min=float(rng.choice([0.0, 0.1])),
        rho_max=float(rng.choice([0.8, 0.95])),
    )


def rates_bps(case: dict, share: np.ndarray) -> np.ndarray:
    """Independent evaluation of ``beta B log2(1 + P g / (beta B N0))``."""
    share = np.asarray(share, dtype=float)
    snr = case["powers_w"] * case["gains"] / (share * case["bandwidth_hz"] * case["noise_psd_w_per_hz"])
    return share * case["bandwidth_hz"] * np.log2(1 + snr)


def latency_of(case: dict, share, rho) -> float:
    bits = (1 - np.asarray(rho)) * case["dense_bits"]
    return float(np.max(case["compute_s"] + bits / rates_bps(case, share)) + case["fixed_s"])


def check_feasible(case: dict, decision: TsfaDecision) -> None:
    share, rho = decision.bandwidth_share, decision.sparsity
    assert np.all(share > 0) and share.sum() <= 1 + 1e-9
    assert np.all(rho >= case["rho_min"]) and np.all(rho <= case["rho_max"])
    assert decision.latency_s == pytest.approx(latency_of(case, share, rho), rel=1e-9)
    assert decision.penalty == pytest.approx(float(case["weights"] @ rho), rel=1e-12, abs=1e-15)


def brute_force(case: dict, v: float, q: float, steps: int) -> float:
    """Least objective over a grid of the simplex ``sum beta = 1`` (step ``1/steps``).

    For fixed shares the objective is convex and piecewise linear in ``L`` (each
    ``rho_k = max(rho_min, 1 - t_k R_k / D_k)``), so its minimum is at one of the
    breakpoints: the least feasible latency (some client at ``rho_max``) or a
    latency at which a client reaches ``rho_min``. Exact for each grid point.
    """
    k = case["dense_bits"].size
    grid = np.stack(np.meshgrid(*[np.arange(1, steps)] * (k - 1), indexing="ij"), -1).reshape(-1, k - 1)
    grid = grid[grid.sum(axis=1) < steps]
    share = np.concatenate([grid, steps - grid.sum(axis=1, keepdims=True)], axis=1) / steps
    rate = rates_bps(case, share)
    d, c, f = case["dense_bits"], case["compute_s"], case["fixed_s"]
    feasible_l = np.max(c + (1 - case["rho_max"]) * d / rate, axis=1) + f
    breakpoints = c + (1 - case["rho_min"]) * d / rate + f
    candidates = np.concatenate([feasible_l[:, None], np.maximum(breakpoints, feasible_l[:, None])], axis=1)
    t = candidates[:, :, None] - f - c
    rho = np.clip(1 - t * rate[:, None, :] / d, case["rho_min"], case["rho_max"])
    objective = v * rho @ case["weights"] + q * candidates
    return float(objective.min())


def decide(case: dict, v: float, q: float) -> TsfaDecision:
    return tsfa_decision(v=v, queue_s=q, **case)


# --- the virtual queue ----------------------------------------------------------------

def test_queue_follows_its_rule_on_a_hand_sequence():
    queue = VirtualQueue(budget_s=2.0)
    backlogs = [queue.update(latency) for latency in (3.0, 1.0, 0.5, 4.0, 2.0, 2.5)]
    assert backlogs == [1.0, 0.0, 0.0, 2.0, 2.0, 2.5]
    assert queue.history == (0.0, 1.0, 0.0, 0.0, 2.0, 2.0, 2.5)
    assert queue.backlog_s == 2.5


def test_queue_refuses_a_bad_budget_or_latency():
    with pytest.raises(ValueError, match="budget_s"):
        VirtualQueue(budget_s=0.0)
    with pytest.raises(ValueError, match="latency_s"):
        VirtualQueue(budget_s=1.0).update(float("nan"))


# --- rates ------------------------------------------------------------------------------

def test_share_for_rate_inverts_the_rate_from_low_to_high_snr():
    rng = np.random.default_rng(1)
    snr = 10 ** rng.uniform(-5, 4, 2000)
    share = 10 ** rng.uniform(-6, 0, 2000)
    rate = uplink_rate_bps(share, snr, BANDWIDTH_HZ)
    np.testing.assert_allclose(share_for_rate(rate, snr, BANDWIDTH_HZ), share, rtol=1e-9)
    # Beyond the rate of an infinite share (a B / ln 2) nothing reaches it.
    assert share_for_rate(1.01 * snr[0] * BANDWIDTH_HZ / np.log(2), snr[0], BANDWIDTH_HZ) == np.inf


# --- the online decision ----------------------------------------------------------------

@pytest.mark.parametrize("k, steps", [(2, 20000), (3, 400)])
def test_decision_matches_brute_force(k, steps):
    rng = np.random.default_rng(100 + k)
    for _ in range(16):
        case = random_round(rng, k)
        v = float(rng.uniform(0.5, 2.0))
        q = float(10 ** rng.uniform(-2, 1.5))
        decision = decide(case, v, q)
        check_feasible(case, decision)
        ours = v * decision.penalty + q * decision.latency_s
        assert decision.objective == pytest.approx(ours, rel=1e-12)
        best = brute_force(case, v, q, steps)
        assert ours <= best * (1 + 1e-5), (ours, best)   # never worse than the grid
        assert best <= ours * (1 + 5e-3), (ours, best)   # the grid is fine enough to agree


def test_without_penalty_weight_the_decision_minimises_latency():
    rng = np.random.default_rng(7)
    for _ in range(10):
        case = random_round(rng, 3)
        decision = decide(case, 0.0, 1.0)
        check_feasible(case, decision)
        np.testing.assert_allclose(decision.sparsity, case["rho_max"])
        # Min-max latency: every share used and every client finishing together.
        bits = (1 - case["rho_max"]) * case["dense_bits"]
        finish = case["compute_s"] + bits / rates_bps(case, decision.bandwidth_share)
        assert decision.bandwidth_share.sum() == pytest.approx(1.0, abs=1e-9)
        np.testing.assert_allclose(finish, finish.max(), rtol=1e-8)
        assert decision.latency_s == pytest.approx(brute_force(case, 0.0, 1.0, 400), rel=5e-3)
        assert decision.latency_s <= brute_force(case, 0.0, 1.0, 400) * (1 + 1e-9)


def test_identical_clients_get_equal_shares_in_closed_form():
    k = 4
    case = random_round(np.random.default_rng(3), 1)
    case.update(dense_bits=np.full(k, 4e6), compute_s=np.full(k, 0.5), gains=np.full(k, 3e-12),
                weights=np.full(k, 1 / k))
    decision = decide(case, 0.0, 2.0)
    np.testing.assert_allclose(decision.bandwidth_share, 1 / k, rtol=1e-9)
    rate = (BANDWIDTH_HZ / k) * np.log2(1 + 0.2 * 3e-12 / (BANDWIDTH_HZ / k * NOISE_PSD_W_PER_HZ))
    expected = 0.1 + 0.5 + (1 - case["rho_max"]) * 4e6 / rate
    assert decision.latency_s == pytest.approx(expected, rel=1e-9)


def test_without_backlog_every_client_sends_as_dense_as_allowed():
    rng = np.random.default_rng(11)
    for _ in range(5):
        case = random_round(rng, 3)
        decision = decide(case, 1.0, 0.0)
        check_feasible(case, decision)
        np.testing.assert_array_equal(decision.sparsity, case["rho_min"])
        assert decision.objective == pytest.approx(decision.penalty)
        # The least latency at rho_min: brute force of the latency alone with rho fixed.
        fixed = dict(case, rho_max=case["rho_min"])
        assert decision.latency_s <= brute_force(fixed, 0.0, 1.0, 300) * (1 + 1e-9)
        bits = (1 - case["rho_min"]) * case["dense_bits"]
        finish = case["compute_s"] + bits / rates_bps(case, decision.bandwidth_share)
        np.testing.assert_allclose(finish, finish.max(), rtol=1e-8)


def test_a_larger_backlog_never_lengthens_the_round_nor_lowers_the_penalty():
    rng = np.random.default_rng(5)
    for _ in range(4):
        case = random_round(rng, 4)
        decisions = [decide(case, 1.0, q) for q in np.r_[0.0, np.logspace(-3, 3, 25)]]
        latency = np.array([d.latency_s for d in decisions])
        penalty = np.array([d.penalty for d in decisions])
        assert np.all(np.diff(latency) <= 1e-6 * latency[:-1])
        assert np.all(np.diff(penalty) >= -1e-6)
        assert penalty[0] == pytest.approx(case["weights"] @ np.full(4, case["rho_min"]))
        assert penalty[-1] > penalty[0]


def test_bad_inputs_are_reported_together():
    case = random_round(np.random.default_rng(0), 3)
    case.update(weights=np.array([0.5, 0.5, 0.5]), rho_max=1.0, compute_s=np.array([1.0, -1.0, 0.0]))
    with pytest.raises(ValueError) as error:
        decide(case, 1.0, 1.0)
    message = str(error.value)
    assert "weights" in message and "rho_max" in message and "compute_s" in message


# --- the long run -------------------------------------------------------------------------

def run_rounds(budget_s: float, rounds: int, seed: int) -> tuple[np.ndarray, np.ndarray, VirtualQueue]:
    """Rayleigh block fading around fixed large-scale gains; realised = decided latency."""
    case = random_round(np.random.default_rng(42), 3)
    large_scale = case.pop("gains")
    rng = np.random.default_rng(seed)
    queue = VirtualQueue(budget_s)
    latency, sparsity = np.empty(rounds), np.empty(rounds)
    for t in range(rounds):
        gains = large_scale * rng.exponential(1.0, large_scale.size)
        decision = tsfa_decision(gains=gains, v=1.0, queue_s=queue.backlog_s, **case)
        latency[t], sparsity[t] = decision.latency_s, case["weights"] @ decision.sparsity
        queue.update(decision.latency_s)
    return latency, sparsity, queue


def test_long_run_meets_the_latency_budget_and_a_tighter_one_sparsifies_more():
    case = random_round(np.random.default_rng(42), 3)
    fast = decide(case, 0.0, 1.0).latency_s   # rho_max on the mean gains
    slow = decide(case, 1.0, 0.0).latency_s   # rho_min
    rounds = 2000
    results = {}
    for name, budget in (("loose", fast + 0.6 * (slow - fast)), ("tight", fast + 0.3 * (slow - fast))):
        latency, sparsity, queue = run_rounds(budget, rounds, seed=9)
        assert latency.mean() <= budget + queue.backlog_s / rounds + 1e-12
        assert latency.mean() <= budget * 1.02
        results[name] = sparsity.mean()
    assert results["tight"] > results["loose"]


# --- the offline stage --------------------------------------------------------------------

def identical_clients_latency(bits: float, k: int, compute_s: float, rho: float) -> float:
    """Closed form: K identical clients share the band equally."""
    rate = (BANDWIDTH_HZ / k) * np.log2(1 + 0.2 * 1e-12 / (BANDWIDTH_HZ / k * NOISE_PSD_W_PER_HZ))
    return 0.1 + compute_s + (1 - rho) * bits / rate


def test_offline_rank_follows_its_rule():
    k, ranks = 3, np.array([4, 8, 16])
    bits = np.repeat(ranks[:, None] * 1e6, k, axis=1)
    compute = np.repeat(0.2 + 0.01 * ranks[:, None], k, axis=1)
    dense = [identical_clients_latency(b, k, c, 0.0) for b, c in zip(bits[:, 0], compute[:, 0])]
    sparse = [identical_clients_latency(b, k, c, 0.9) for b, c in zip(bits[:, 0], compute[:, 0])]
    kw = dict(candidate_ranks=ranks, dense_bits_by_rank=bits, compute_s_by_rank=compute,
              gains=np.full(k, 1e-12), powers_w=0.2, noise_psd_w_per_hz=NOISE_PSD_W_PER_HZ,
              bandwidth_hz=BANDWIDTH_HZ, fixed_s=0.1, rho_min=0.0, rho_max=0.9)
    # Dense rank 8 fits, dense rank 16 does not: 8.
    assert offline_rank(budget_s=(dense[1] + dense[2]) / 2, **kw) == 8
    # No dense rank fits, every sparse one does: the smallest (cheapest), 4.
    assert dense[0] > sparse[2]
    assert offline_rank(budget_s=(sparse[2] + dense[0]) / 2, **kw) == 4
    # No dense rank fits, only ranks 4 and 8 fit sparse: 4.
    assert offline_rank(budget_s=(sparse[1] + sparse[2]) / 2, **kw) == 4
    # Only rank 4 fits, sparse.
    assert offline_rank(budget_s=(sparse[0] + sparse[1]) / 2, **kw) == 4
    with pytest.raises(InfeasibleError, match=r"tsfa\.latency_budget_s.*smallest latency achievable is "
                       + f"{sparse[0]:.6g}".replace(".", r"\.")):
        offline_rank(budget_s=sparse[0] * 0.99, **kw)


def test_offline_rank_charges_each_rank_its_own_fixed_time():
    k, ranks = 3, np.array([4, 8, 16])
    bits = np.repeat(ranks[:, None] * 1e6, k, axis=1)
    compute = np.repeat(0.2 + 0.01 * ranks[:, None], k, axis=1)
    kw = dict(candidate_ranks=ranks, dense_bits_by_rank=bits, compute_s_by_rank=compute,
              gains=np.full(k, 1e-12), powers_w=0.2, noise_psd_w_per_hz=NOISE_PSD_W_PER_HZ,
              bandwidth_hz=BANDWIDTH_HZ, rho_min=0.0, rho_max=0.9)
    dense_8 = identical_clients_latency(bits[1, 0], k, compute[1, 0], 0.0)  # with fixed_s = 0.1
    budget = dense_8 + 0.05
    # Rank 8 fits with 0.1 s of broadcast; charged rank 16's 0.4 s (the old rule) it would not.
    assert offline_rank(budget_s=budget, fixed_s=np.array([0.05, 0.1, 0.4]), **kw) == 8
    assert offline_rank(budget_s=budget, fixed_s=0.4, **kw) == 4
    with pytest.raises(ValueError, match=r"fixed_s: expected shape \(3,\)"):
        offline_rank(budget_s=budget, fixed_s=np.array([0.1, 0.1]), **kw)


# --- whole subchannels ----------------------------------------------------------------------

def test_shares_to_subchannels_on_random_inputs():
    rng = np.random.default_rng(8)
    for _ in range(200):
        k = int(rng.integers(1, 12))
        n = int(rng.integers(k, 80))
        shares = rng.dirichlet(np.full(k, 0.5))
        counts = shares_to_subchannels(shares, n)
        assert counts.dtype.kind == "i" and counts.sum() == n and np.all(counts >= 1)
        # Never more than one subchannel away from a quota that respects the minimum.
        extra = np.maximum(n * shares - 1, 0)
        quota = 1 + (extra / extra.sum() * (n - k) if extra.sum() > 0 else (n - k) / k)
        assert np.all(np.abs(counts - quota) < 1)


@pytest.mark.parametrize("shares, n, expected", [
    ([0.9, 0.05, 0.05], 10, [8, 1, 1]),
    ([0.5, 0.5], 3, [2, 1]),          # tie: the lower index
    ([1.0, 0.0, 0.0], 5, [3, 1, 1]),
    ([1 / 3] * 3, 4, [2, 1, 1]),
    ([0.2, 0.3, 0.5], 3, [1, 1, 1]),  # N == K
    ([0.25, 0.75], 100, [25, 75]),
])
def test_shares_to_subchannels_edge_cases(shares, n, expected):
    np.testing.assert_array_equal(shares_to_subchannels(np.array(shares), n), expected)


def test_shares_to_subchannels_refuses_too_few_subchannels():
    with pytest.raises(InfeasibleError, match="K=3 clients and only N=2"):
        shares_to_subchannels([0.3, 0.3, 0.4], 2)
    with pytest.raises(ValueError, match="shares"):
        shares_to_subchannels([0.0, 0.0], 4)
