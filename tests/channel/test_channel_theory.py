import numpy as np
import pytest
from scipy import integrate

from channel import (
    coherence_time_s,
    doppler_hz,
    ergodic_rayleigh_capacity_bps_per_hz,
    gauss_markov_rho,
    jakes_autocorrelation,
    outage_probability,
)


@pytest.mark.parametrize("g", [1e-5, 1e-3, 0.1, 1.0, 31.6, 1e3, 1e5])
def test_ergodic_capacity_matches_numerical_integration(g):
    # E[log2(1 + g X)], X ~ Exp(1), by quadrature; split where log1p(g x) bends (x = 1/g).
    split = min(1.0 / g, 1.0)
    head, _ = integrate.quad(lambda x: np.log1p(g * x) * np.exp(-x), 0.0, split, epsabs=0, epsrel=1e-12)
    tail, _ = integrate.quad(lambda x: np.log1p(g * x) * np.exp(-x), split, np.inf, epsabs=0, epsrel=1e-12)
    assert ergodic_rayleigh_capacity_bps_per_hz(g) == pytest.approx((head + tail) / np.log(2.0), rel=1e-9)


def test_ergodic_capacity_limits_and_shape():
    assert ergodic_rayleigh_capacity_bps_per_hz(0.0) == 0.0
    # low SNR: g / ln 2 (1 - g + ...); high SNR: log2(g) - Euler gamma / ln 2
    assert ergodic_rayleigh_capacity_bps_per_hz(1e-9) == pytest.approx(1e-9 / np.log(2.0), rel=1e-8)
    high_snr = np.log2(1e9) - np.euler_gamma / np.log(2)
    assert ergodic_rayleigh_capacity_bps_per_hz(1e9) == pytest.approx(high_snr, rel=1e-8)
    out = ergodic_rayleigh_capacity_bps_per_hz(np.array([[1.0, 10.0], [100.0, 0.0]]))
    assert out.shape == (2, 2)
    assert np.all(np.diff(ergodic_rayleigh_capacity_bps_per_hz(np.logspace(-6, 6, 200))) > 0)


def test_outage_probability_known_values():
    assert outage_probability(1e6, 1e6, 1.0) == pytest.approx(1 - np.exp(-1.0), rel=1e-15)
    assert outage_probability(2e6, 1e6, 3.0) == pytest.approx(1 - np.exp(-1.0), rel=1e-15)
    assert outage_probability(0.0, 1e6, 3.0) == 0.0
    assert outage_probability(1e3, 1e6, 10.0) == pytest.approx((2 ** 1e-3 - 1) / 10, rel=1e-3)


def test_doppler_coherence_and_rho():
    fd_hz = doppler_hz(3.0 / 3.6, 2e9)
    assert fd_hz == pytest.approx(5.559, rel=1e-3)
    assert coherence_time_s(fd_hz) == pytest.approx(0.0761, rel=1e-3)
    assert coherence_time_s(0.0) == np.inf
    assert gauss_markov_rho(0.0, 0.1) == 1.0
    # rho is Jakes' autocorrelation at a lag of one block, whatever the block length
    for block_s in [1e-3, 0.02, coherence_time_s(fd_hz)]:
        jakes = jakes_autocorrelation(fd_hz, block_s)
        assert gauss_markov_rho(fd_hz, block_s) == pytest.approx(jakes, abs=1e-15)
    assert gauss_markov_rho(fd_hz, 1e-3) == pytest.approx(1 - (2 * np.pi * fd_hz * 1e-3) ** 2 / 4, rel=1e-6)
    # blocks as long as the coherence time are nearly uncorrelated: J0(2 pi 0.423)
    assert gauss_markov_rho(fd_hz, coherence_time_s(fd_hz)) == pytest.approx(-0.1235, abs=1e-4)


def test_jakes_autocorrelation_values():
    assert jakes_autocorrelation(10.0, 0.0) == 1.0
    first_zero_s = 2.404825557695773 / (2 * np.pi * 10.0)
    assert jakes_autocorrelation(10.0, first_zero_s) == pytest.approx(0.0, abs=1e-12)
    assert jakes_autocorrelation(10.0, -0.01) == jakes_autocorrelation(10.0, 0.01)
