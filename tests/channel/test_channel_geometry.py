import numpy as np
import pytest
from scipy import stats

from channel import drop_uniform_in_cell, draw_shadowing_db, large_scale_gain_lin, pathloss_db


def _annulus_cdf(r_min, r_max):
    return lambda r: (np.clip(r, r_min, r_max) ** 2 - r_min**2) / (r_max**2 - r_min**2)


def test_drop_stays_in_the_annulus_and_follows_the_area_law():
    n = 20_000
    d_m = drop_uniform_in_cell(np.random.default_rng(11), n, radius_m=500.0, min_distance_m=10.0)
    assert d_m.shape == (n,)
    assert d_m.min() >= 10.0 and d_m.max() <= 500.0
    ks_1pct = 1.63 / np.sqrt(n)  # Kolmogorov-Smirnov critical value at 1 %
    assert stats.kstest(d_m, _annulus_cdf(10.0, 500.0)).statistic < ks_1pct
    # The same check rejects distances uniform in r (a classic mistake), so it has power.
    wrong = np.random.default_rng(11).uniform(10.0, 500.0, n)
    assert stats.kstest(wrong, _annulus_cdf(10.0, 500.0)).statistic > 10 * ks_1pct


def test_drop_is_deterministic_and_checks_arguments():
    a = drop_uniform_in_cell(np.random.default_rng(3), 5, radius_m=500.0, min_distance_m=10.0)
    b = drop_uniform_in_cell(np.random.default_rng(3), 5, radius_m=500.0, min_distance_m=10.0)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"radius_m\(=-1\) must be > 0"):
        drop_uniform_in_cell(np.random.default_rng(0), 3, radius_m=-1, min_distance_m=0.0)
    with pytest.raises(ValueError, match=r"min_distance_m\(=600.0\) must be <= radius_m"):
        drop_uniform_in_cell(np.random.default_rng(0), 3, radius_m=500.0, min_distance_m=600.0)
    with pytest.raises(ValueError, match="n_clients"):
        drop_uniform_in_cell(np.random.default_rng(0), -2, radius_m=500.0, min_distance_m=10.0)


def test_pathloss_macro_model():
    assert pathloss_db(1000.0) == pytest.approx(128.1, abs=1e-12)
    assert pathloss_db(100.0) == pytest.approx(128.1 - 37.6, abs=1e-12)
    np.testing.assert_allclose(pathloss_db([10.0, 10_000.0]), [128.1 - 2 * 37.6, 128.1 + 37.6], atol=1e-12)
    assert pathloss_db(1000.0, intercept_db=100.0, slope_db=20.0) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="distance_m"):
        pathloss_db(0.0)


def test_shadowing_std_and_stream_alignment():
    x_db = draw_shadowing_db(np.random.default_rng(5), (100_000,), std_db=8.0)
    assert x_db.mean() == pytest.approx(0.0, abs=0.1)
    assert x_db.std() == pytest.approx(8.0, rel=0.01)
    # std 0 gives zeros and consumes the same draws, so later draws do not shift.
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    zeros = draw_shadowing_db(rng_a, (3, 4), std_db=0.0)
    draw_shadowing_db(rng_b, (3, 4), std_db=8.0)
    np.testing.assert_array_equal(zeros, np.zeros((3, 4)))
    assert rng_a.random() == rng_b.random()
    with pytest.raises(ValueError, match=r"std_db\(=-1.0\)"):
        draw_shadowing_db(rng_a, 3, std_db=-1.0)


def test_large_scale_gain():
    assert large_scale_gain_lin(100.0, 0.0) == pytest.approx(1e-10, rel=1e-14)
    np.testing.assert_allclose(large_scale_gain_lin(np.array([120.0, 120.0]), np.array([10.0, -10.0])),
                               [1e-13, 1e-11], rtol=1e-14)
