"""TR 38.901 UMa / UMi against the reference numbers of issue 12, recomputed here from the tables."""

import math

import numpy as np
import pytest

from channel import tr38901

FC_HZ, H_UT = 3.5e9, 1.5


def _log10(x):
    return math.log10(x)


def test_uma_pathloss_at_100_m_matches_the_reference_numbers():
    kw = dict(carrier_hz=FC_HZ, bs_height_m=25.0, ut_height_m=H_UT)
    # Recomputed by hand from Table 7.4.1-1: d3D = sqrt(100^2 + 23.5^2).
    d3 = math.hypot(100.0, 23.5)
    assert 28.0 + 22 * _log10(d3) + 20 * _log10(3.5) == pytest.approx(83.138, abs=5e-4)
    assert tr38901.pathloss_los_db("uma", 100.0, **kw) == pytest.approx(83.138, abs=5e-4)
    assert tr38901.pathloss_nlos_db("uma", 100.0, **kw) == pytest.approx(103.038, abs=1e-3)


def test_umi_pathloss_at_100_m_matches_the_reference_numbers():
    kw = dict(carrier_hz=FC_HZ, bs_height_m=10.0, ut_height_m=H_UT)
    assert tr38901.pathloss_los_db("umi", 100.0, **kw) == pytest.approx(85.31, abs=5e-3)
    assert tr38901.pathloss_nlos_db("umi", 100.0, **kw) == pytest.approx(104.64, abs=5e-3)


@pytest.mark.parametrize("scenario, expected", [
    ("uma", [0.6494, 0.3477, 0.1280, 0.0363]),
    ("umi", [0.5196, 0.2310, 0.0935, 0.0360]),
])
def test_los_probability_matches_the_reference_numbers(scenario, expected):
    got = tr38901.los_probability(scenario, [50.0, 100.0, 200.0, 500.0])
    np.testing.assert_allclose(got, expected, atol=5e-5)
    assert tr38901.los_probability(scenario, 18.0) == 1.0  # inside 18 m: always LoS


def test_breakpoint_switches_to_the_40_db_per_decade_law():
    kw = dict(carrier_hz=FC_HZ, bs_height_m=25.0, ut_height_m=H_UT)
    d_bp = tr38901.breakpoint_distance_m(25.0, H_UT, FC_HZ)
    assert d_bp == pytest.approx(560.0)  # 4 * 24 * 0.5 * 3.5e9 / 3e8
    # Beyond the breakpoint PL grows by ~40 dB per decade of d3D (PL2), before it by 22 dB (PL1).
    far = tr38901.pathloss_los_db("uma", np.array([1000.0, 4000.0]), **kw)
    d3 = np.hypot([1000.0, 4000.0], 23.5)
    assert far[1] - far[0] == pytest.approx(40 * np.log10(d3[1] / d3[0]))
    near = tr38901.pathloss_los_db("uma", np.array([50.0, 500.0]), **kw)
    d3 = np.hypot([50.0, 500.0], 23.5)
    assert near[1] - near[0] == pytest.approx(22 * np.log10(d3[1] / d3[0]))
    # PL1 and PL2 meet at the breakpoint (the formulas are continuous there, to ~0.1 dB).
    at = tr38901.pathloss_los_db("uma", np.array([d_bp * (1 - 1e-9), d_bp * (1 + 1e-9)]), **kw)
    assert abs(at[1] - at[0]) < 0.2


def test_nlos_is_never_below_los():
    kw = dict(carrier_hz=2e9, bs_height_m=10.0, ut_height_m=H_UT)
    d = np.geomspace(10, 5000, 200)
    for scenario in tr38901.SCENARIOS:
        assert np.all(tr38901.pathloss_nlos_db(scenario, d, **kw) >= tr38901.pathloss_los_db(scenario, d, **kw))


def test_shadowing_std_by_los_state():
    np.testing.assert_array_equal(tr38901.shadowing_std_38901_db("uma", [True, False]), [4.0, 6.0])
    np.testing.assert_array_equal(tr38901.shadowing_std_38901_db("umi", [True, False]), [4.0, 7.82])


def test_validity_ranges_name_the_setting():
    ok = dict(carrier_hz=3.5e9, bs_height_m=25.0, ut_height_m=1.5, min_distance_2d_m=10.0, max_distance_2d_m=500.0)
    assert tr38901.validity_problems("uma", **ok) == []
    bad = dict(ok, carrier_hz=200e9, ut_height_m=15.0, min_distance_2d_m=5.0, max_distance_2d_m=6000.0)
    keys = [key for key, _ in tr38901.validity_problems("uma", **bad)]
    assert keys == ["carrier_hz", "ut_height_m", "min_distance_2d_m", "max_distance_2d_m"]
    assert [k for k, _ in tr38901.validity_problems("umi", **dict(ok, bs_height_m=1.0))] == ["bs_height_m"]
    with pytest.raises(ValueError, match="scenario"):
        tr38901.params("rma")
