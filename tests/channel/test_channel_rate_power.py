import numpy as np
import pytest

from channel import (
    PowerBudgetError,
    check_power_budget,
    dbm_to_watt,
    equal_power_w,
    noise_power_w,
    shannon_rate_bps,
    snr_lin,
)


def test_noise_power_by_hand():
    # -174 dBm/Hz + 5 dB + 10 log10(180e3) = -116.447 dBm = 2.2656e-15 W
    by_hand_w = 10 ** ((-174.0 + 5.0) / 10.0) * 1e-3 * 180e3
    assert noise_power_w(180e3, noise_figure_db=5.0) == pytest.approx(by_hand_w, rel=1e-12)
    assert noise_power_w(180e3, noise_figure_db=5.0) == pytest.approx(2.2656e-15, rel=1e-4)
    assert noise_power_w(1.0, noise_figure_db=0.0, noise_psd_dbm_per_hz=-30.0) == pytest.approx(1e-6)
    np.testing.assert_allclose(noise_power_w(np.array([1e6, 2e6]), noise_figure_db=9.0)[1] / 2,
                               noise_power_w(1e6, noise_figure_db=9.0), rtol=1e-14)
    with pytest.raises(ValueError, match=r"bandwidth_hz\(=0.0\)"):
        noise_power_w(0.0, noise_figure_db=5.0)


def test_snr_and_shannon_rate():
    assert snr_lin(0.2, 1e-10, 2e-12) == pytest.approx(10.0, rel=1e-14)
    assert shannon_rate_bps(180e3, 1.0) == pytest.approx(180e3, rel=1e-15)
    assert shannon_rate_bps(1e6, 15.0) == pytest.approx(4e6, rel=1e-15)
    # low SNR: B snr / ln 2, where log2(1 + snr) would lose every digit
    assert shannon_rate_bps(1.0, 1e-20) == pytest.approx(1e-20 / np.log(2.0), rel=1e-12)
    np.testing.assert_allclose(shannon_rate_bps([1.0, 2.0], [3.0, 3.0]), [2.0, 4.0], rtol=1e-15)


def test_equal_power_spreads_the_limit():
    p_max_w = dbm_to_watt(23.0)
    p_w = equal_power_w(p_max_w, 7)
    assert p_w.shape == (7,)
    assert np.all(p_w == p_w[0])
    assert p_w.sum() == pytest.approx(p_max_w, rel=1e-14)
    check_power_budget(p_w, p_max_w)  # rounding of the sum stays within the tolerance
    assert equal_power_w(p_max_w, 0).shape == (0,)


def test_budget_errors_name_the_budget():
    p_max_w = dbm_to_watt(23.0)
    with pytest.raises(PowerBudgetError, match=r"max_power_w\(=0.1995.* W, 23.00 dBm\)"):
        check_power_budget([0.1, 0.11], p_max_w)
    with pytest.raises(PowerBudgetError, match=r"power_w\(=\[0.1, -0.01\]\)"):
        check_power_budget([0.1, -0.01], p_max_w)
    check_power_budget(np.full(3, p_max_w / 3) * (1 + 1e-12), p_max_w)  # within the tolerance
    with pytest.raises(ValueError):  # a PowerBudgetError is also a ValueError
        check_power_budget([1.0], 0.5)
