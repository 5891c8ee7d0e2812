import numpy as np
import pytest
from scipy import stats

from channel import (
    BlockFading,
    ergodic_rayleigh_capacity_bps_per_hz,
    gauss_markov_rho,
    jakes_autocorrelation,
    outage_probability,
    rayleigh_gauss_markov,
)

N_BLOCKS, N_SUB = 20_000, 16  # 320k gains per Monte Carlo test


def _gains(seed, rho):
    fading = BlockFading(np.random.default_rng(seed), N_SUB, block_s=0.01, rho=rho)
    return fading.power_gains(0, N_BLOCKS)


def _n_effective(n, rho):
    # |h|^2 of a Gauss-Markov process has lag-k correlation rho^(2k): n (1 - r) / (1 + r), r = rho^2.
    return n * (1 - rho**2) / (1 + rho**2)


@pytest.mark.parametrize("rho", [0.0, 0.9])
def test_power_gain_is_exp1(rho):
    x = _gains(1, rho).ravel()
    se = 1.0 / np.sqrt(_n_effective(x.size, rho))
    assert x.mean() == pytest.approx(1.0, abs=5 * se)
    assert x.var() == pytest.approx(1.0, abs=5 * 3 * se)  # Var of X^2 terms: sd of (X - 1)^2 is about 3
    assert np.all(x > 0)
    if rho == 0.0:
        assert stats.kstest(x, "expon").statistic < 1.63 / np.sqrt(x.size)


@pytest.mark.parametrize("rho", [0.0, 0.95])
@pytest.mark.parametrize("mean_snr_lin", [0.5, 30.0])
def test_monte_carlo_capacity_matches_ergodic_closed_form(rho, mean_snr_lin):
    c = np.log2(1.0 + mean_snr_lin * _gains(2, rho)).ravel()
    se = c.std() / np.sqrt(_n_effective(c.size, rho))
    theory = ergodic_rayleigh_capacity_bps_per_hz(mean_snr_lin)
    assert abs(c.mean() - theory) < 5 * se
    assert 5 * se < 0.04 * theory  # and the check is tight


@pytest.mark.parametrize("rho", [0.0, 0.95])
def test_outage_frequency_matches_closed_form(rho):
    bandwidth_hz, mean_snr_lin, rate_bps = 180e3, 10.0, 360e3
    rates = bandwidth_hz * np.log2(1.0 + mean_snr_lin * _gains(3, rho)).ravel()
    p_theory = outage_probability(rate_bps, bandwidth_hz, mean_snr_lin)  # 1 - exp(-0.3) = 0.26
    se = np.sqrt(p_theory * (1 - p_theory) / _n_effective(rates.size, rho))
    assert np.mean(rates < rate_bps) == pytest.approx(p_theory, abs=5 * se)


def test_lag_one_autocorrelation_of_h_is_rho():
    fd_hz, block_s = 5.56, 0.02
    rho = gauss_markov_rho(fd_hz, block_s)  # 0.877
    h = rayleigh_gauss_markov(np.random.default_rng(4), 100_000, 4, rho)
    assert np.mean(np.abs(h) ** 2) == pytest.approx(1.0, abs=0.01)
    lag1 = np.mean(h[:-1] * np.conj(h[1:]))
    assert lag1.real == pytest.approx(jakes_autocorrelation(fd_hz, block_s), abs=0.01)
    assert abs(lag1.imag) < 0.01
    lag3 = np.mean(h[:-3] * np.conj(h[3:])).real
    assert lag3 == pytest.approx(rho**3, abs=0.01)
    # independent across subchannels
    assert abs(np.mean(h[:, 0] * np.conj(h[:, 1]))) < 0.01


def test_block_fading_keeps_the_correlation_across_its_internal_chunks():
    rho = 0.99
    fading = BlockFading(np.random.default_rng(5), 8, block_s=0.01, rho=rho)
    size = BlockFading.CHUNK_BLOCKS
    h = fading.complex_gains(0, 200 * size)
    lag1 = np.mean(h[:-1] * np.conj(h[1:])).real
    assert lag1 == pytest.approx(rho, abs=0.005)
    last, first = h[size - 1::size][:-1], h[size::size]  # pairs that straddle a chunk boundary
    assert np.mean(last * np.conj(first)).real == pytest.approx(rho, abs=0.05)


def test_rayleigh_gauss_markov_chains_like_one_call():
    whole = rayleigh_gauss_markov(np.random.default_rng(6), 100, 3, 0.7)
    rng = np.random.default_rng(6)
    head = rayleigh_gauss_markov(rng, 40, 3, 0.7)
    tail = rayleigh_gauss_markov(rng, 60, 3, 0.7, h_prev=head[-1])
    np.testing.assert_allclose(np.concatenate([head, tail]), whole, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(rayleigh_gauss_markov(np.random.default_rng(6), 5, 3, 1.0)[4], whole[0])
    with pytest.raises(ValueError, match=r"rho\(=1.5\)"):
        rayleigh_gauss_markov(rng, 3, 3, 1.5)


def test_same_seed_same_gains_whatever_the_order_of_requests():
    a = BlockFading(np.random.default_rng(7), 6, block_s=0.076, rho=0.5)
    b = BlockFading(np.random.default_rng(7), 6, block_s=0.076, rho=0.5)
    a50, a3 = a.power_gain(50), a.power_gain(3)
    b3, b50 = b.power_gain(3), b.power_gain(50)
    np.testing.assert_array_equal(a3, b3)
    np.testing.assert_array_equal(a50, b50)
    assert not np.array_equal(a3, a50)
    # far blocks evict early chunks from the cache; asking again regenerates the same values
    far = a.power_gain(40 * BlockFading.CHUNK_BLOCKS + 17)
    np.testing.assert_array_equal(a.power_gain(3), b3)
    np.testing.assert_array_equal(b.power_gain(40 * BlockFading.CHUNK_BLOCKS + 17), far)
    np.testing.assert_array_equal(a.power_gains(2, 600), np.stack([b.power_gain(k) for k in range(2, 600)]))
    c = BlockFading(np.random.default_rng(8), 6, block_s=0.076, rho=0.5)
    assert not np.array_equal(c.power_gain(3), a3)


def test_disabled_fading_is_exactly_one_and_draws_nothing():
    rng = np.random.default_rng(9)
    before = rng.bit_generator.state
    fading = BlockFading(rng, 4, block_s=0.01, rho=0.3, enabled=False)
    assert np.all(fading.power_gain(12345) == 1.0)
    assert fading.power_gains(0, 10).shape == (10, 4)
    assert fading.is_static
    assert rng.bit_generator.state == before


def test_block_index_at_exact_boundaries():
    fading = BlockFading(np.random.default_rng(0), 1, block_s=0.076, rho=0.0)
    for b in range(0, 200_000, 997):
        t_s = fading.block_start_s(b)
        assert fading.block_index(t_s) == b
        if b > 0:
            assert fading.block_index(np.nextafter(t_s, -np.inf)) == b - 1
    assert fading.block_index(0.0) == 0
    assert fading.block_index(0.1) == 1
    with pytest.raises(ValueError, match=r"t_s\(=-1.0\)"):
        fading.block_index(-1.0)


def test_constructor_checks():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"block_s\(=0.0\) must be > 0"):
        BlockFading(rng, 4, block_s=0.0, rho=0.5)
    with pytest.raises(ValueError, match=r"rho\(=-1.2\)"):
        BlockFading(rng, 4, block_s=0.1, rho=-1.2)
    with pytest.raises(ValueError, match="n_subchannels"):
        BlockFading(rng, 2.5, block_s=0.1, rho=0.5)


def test_a_chunk_is_the_same_whether_drawn_alone_or_caught_up_with_others():
    size = BlockFading.CHUNK_BLOCKS
    one_by_one = BlockFading(np.random.default_rng(9), 5, block_s=0.01, rho=0.6)
    at_once = BlockFading(np.random.default_rng(9), 5, block_s=0.01, rho=0.6)
    steps = [one_by_one.power_gain(c * size + 3, [1, 4]) for c in range(7)]
    jump = at_once.power_gain(6 * size + 3, [1, 4])            # chunks 0..5 caught up in one draw
    np.testing.assert_array_equal(jump, steps[-1])
    np.testing.assert_array_equal(at_once.power_gains(2 * size, 3 * size, [4]),
                                  one_by_one.power_gains(2 * size, 3 * size, [4]))
    # a subchannel asked for late gets the values it would have had from the start
    late = BlockFading(np.random.default_rng(9), 5, block_s=0.01, rho=0.6)
    late.power_gain(3, [1])
    np.testing.assert_array_equal(late.power_gain(6 * size + 3, [4]), steps[-1][1:])
