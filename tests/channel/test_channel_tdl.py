"""TDL fading against the closed forms of a tapped delay line, and the flat model kept as it was."""

import math

import numpy as np
import pytest

from channel import BlockFading
from channel.tdl import TDL_PROFILES, TdlFading, frequency_correlation, rms_delay_spread_s, tdl_taps

B_HZ, N_SUB = 180e3, 12


def _fading(profile, ds_s, *, seed=0, rho=0.0, n=N_SUB):
    return TdlFading(np.random.default_rng(seed), n, block_s=0.01, rho=rho, profile=profile, delay_spread_s=ds_s,
                     subchannel_bandwidth_hz=B_HZ)


@pytest.mark.parametrize("profile", sorted(TDL_PROFILES))
def test_normalised_profiles_have_unit_delay_spread(profile):
    # A check of the transcribed tables: TR 38.901 normalises each profile to DS = 1.
    delays, powers, _ = tdl_taps(profile, 1.0)
    assert rms_delay_spread_s(delays, powers) == pytest.approx(1.0, abs=0.007)
    assert powers.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("profile", ["TDL-A", "TDL-C", "TDL-D"])
def test_mean_gain_is_one(profile):
    g = _fading(profile, 300e-9).power_gains(0, 20_000)
    se = g.std() / math.sqrt(g.shape[0])
    assert abs(g.mean() - 1.0) < 5 * se + 1e-3


@pytest.mark.parametrize("profile, ds_s", [("TDL-A", 300e-9), ("TDL-C", 1000e-9), ("TDL-E", 300e-9)])
def test_frequency_correlation_is_the_fourier_transform_of_the_pdp(profile, ds_s):
    n_blocks = 40_000
    h = _fading(profile, ds_s, seed=1).complex_gains(0, n_blocks)
    delays, powers, _ = tdl_taps(profile, ds_s)
    for lag in (1, 3, 8):
        # Sample E[H_n H_{n+lag}^*] averaged over n and blocks, against sum_l P_l exp(+j 2 pi lag B tau_l).
        prod = (h[:, :-lag] * np.conj(h[:, lag:])).ravel()
        theory = frequency_correlation(delays, powers, -lag * B_HZ)
        se = np.abs(prod).std() / math.sqrt(n_blocks)
        assert abs(prod.mean() - theory) < 5 * se
    # Power gains of a Rayleigh profile: corr(|H_n|^2, |H_m|^2) = |R(delta_f)|^2.
    if profile != "TDL-E":
        g = np.abs(h) ** 2
        c = np.corrcoef(g[:, 0], g[:, 5])[0, 1]
        assert c == pytest.approx(abs(frequency_correlation(delays, powers, 5 * B_HZ)) ** 2,
                                  abs=5 / math.sqrt(n_blocks) * 2)


def test_zero_delay_spread_is_flat():
    g = _fading("TDL-C", 0.0, seed=2).power_gains(0, 50)
    np.testing.assert_allclose(g, np.repeat(g[:, :1], N_SUB, axis=1), rtol=1e-12)
    assert g.std() > 0.1  # and it still fades in time


def test_time_correlation_of_each_subchannel_follows_rho():
    rho = 0.9
    h = _fading("TDL-B", 100e-9, seed=3, rho=rho).complex_gains(0, 30_000)
    lag1 = np.mean(h[1:] * np.conj(h[:-1])) / np.mean(np.abs(h) ** 2)
    assert lag1.real == pytest.approx(rho, abs=0.02)


def test_flat_model_is_unchanged_by_the_tdl_option():
    # The i.i.d.-per-subchannel model draws exactly what it drew before (first gains of seed 0).
    f = BlockFading(np.random.default_rng(0), 4, block_s=0.1, rho=0.5)
    again = BlockFading(np.random.default_rng(0), 4, block_s=0.1, rho=0.5)
    np.testing.assert_array_equal(f.power_gains(300, 310), again.power_gains(300, 310))
    assert not np.allclose(f.power_gain(0)[0], f.power_gain(0)[1])  # independent across subchannels
