"""Mobility, the large-scale gain along a path, and shadowing correlated between devices."""

import math

import numpy as np
import pytest

from channel.largescale import LargeScale
from channel.mobility import ConstantVelocity, RandomWaypoint, Static, start_position_m
from channel.pathloss_models import LogDistance, Tr38901
from channel.shadowing import correlated_normals


def test_moving_straight_away_the_gain_falls_as_the_law_says():
    speed, block_s = 10.0, 0.5
    path = ConstantVelocity([20.0, 0.0], speed, heading_rad=0.0, radius_m=500.0)
    track = LargeScale(model=LogDistance(std_db=0.0), trajectory=path, block_s=block_s, min_distance_m=10.0,
                       shadowing_z=0.0, rng=np.random.default_rng(0))
    blocks = np.arange(0, 90)  # 20 m -> 465 m, before the edge
    d = 20.0 + speed * block_s * blocks
    expected_db = -(128.1 + 37.6 * np.log10(d / 1000.0))  # TR 36.814 macro, by hand
    got = track.gains_lin(0, 90)
    np.testing.assert_allclose(10 * np.log10(got), expected_db, atol=1e-9)
    assert np.all(np.diff(got) < 0)
    assert track.distance_m(3.0) == pytest.approx(50.0)


def test_uma_los_gain_along_the_path_matches_table_7_4_1_1():
    model = Tr38901("uma", carrier_hz=3.5e9, bs_height_m=25.0, ut_height_m=1.5, std_los_db=0.0)
    path = ConstantVelocity([50.0, 0.0], 25.0, heading_rad=0.0, radius_m=500.0)
    track = LargeScale(model=model, trajectory=path, block_s=1.0, min_distance_m=10.0, shadowing_z=0.0,
                       los_mode="los", rng=np.random.default_rng(1))
    d2 = 50.0 + 25.0 * np.arange(10)
    d3 = np.hypot(d2, 23.5)
    expected = 28.0 + 22 * np.log10(d3) + 20 * np.log10(3.5)  # PL1: all before the 560 m breakpoint
    np.testing.assert_allclose(-10 * np.log10(track.gains_lin(0, 10)), expected, atol=1e-9)


def test_constant_velocity_is_reflected_at_the_cell_edge_at_constant_speed():
    path = ConstantVelocity([100.0, 50.0], 30.0, heading_rad=0.7, radius_m=200.0)
    t = np.arange(0, 400, 0.25)
    p = path.positions_m(t)
    r = np.hypot(p[:, 0], p[:, 1])
    assert r.max() <= 200.0 + 1e-9
    assert r.max() > 199.0  # it reached the edge
    step = np.hypot(*np.diff(p, axis=0).T)
    assert np.all(step <= 30.0 * 0.25 + 1e-9)
    assert np.median(step) == pytest.approx(7.5)


def test_random_waypoint_stays_in_the_cell_and_is_reproducible():
    def path():
        return RandomWaypoint(start_position_m(100.0, 0.3), 5.0, rng=np.random.default_rng(7), radius_m=300.0,
                              min_distance_m=10.0)
    a, b = path(), path()
    t = np.linspace(0, 2000, 4001)
    pa = a.positions_m(t)
    assert np.hypot(pa[:, 0], pa[:, 1]).max() <= 300.0 + 1e-9
    # The same times asked in another order give the same positions.
    np.testing.assert_array_equal(b.positions_m(t[::-1])[::-1], pa)
    assert np.all(np.hypot(*np.diff(pa, axis=0).T) <= 5.0 * 0.5 + 1e-9)


def test_shadowing_along_the_path_has_gudmundson_autocorrelation():
    speed, block_s, d_corr = 10.0, 1.0, 50.0
    model = LogDistance(std_db=6.0, decorrelation_m=d_corr)
    path = ConstantVelocity([0.0, 100.0], speed, heading_rad=0.2, radius_m=5000.0)
    track = LargeScale(model=model, trajectory=path, block_s=block_s, min_distance_m=10.0, shadowing_z=0.3,
                       rng=np.random.default_rng(2))
    n = 40_000
    s = track.states(0, n)[2] / 6.0
    a = math.exp(-speed * block_s / d_corr)  # 0.819
    lag1 = np.corrcoef(s[:-1], s[1:])[0, 1]
    assert lag1 == pytest.approx(a, abs=5 * math.sqrt((1 - a * a) / n) * 3)
    assert s.std() == pytest.approx(1.0, abs=0.05)
    assert s[0] == pytest.approx(0.3)


def test_static_los_frequency_matches_the_los_probability():
    model = Tr38901("uma", carrier_hz=3.5e9)
    rng = np.random.default_rng(3)
    n = 6_000
    los = [LargeScale(model=model, trajectory=Static([100.0, 0.0]), block_s=math.inf, min_distance_m=10.0,
                      shadowing_z=0.0, los_z=z).states(0, 1)[1][0] for z in rng.standard_normal(n)]
    p = 0.3477  # TR 38.901 Table 7.4.2-1, UMa at 100 m
    assert np.mean(los) == pytest.approx(p, abs=5 * math.sqrt(p * (1 - p) / n))


def test_correlated_shadowing_has_the_exponential_correlation_and_keeps_prefixes():
    positions = np.array([[0.0, 100.0], [30.0, 100.0], [0.0, 400.0]])
    rng = np.random.default_rng(4)
    z = rng.standard_normal((3, 50_000))
    x = np.stack([correlated_normals(z[:, i], positions, 50.0) for i in range(0, 50_000, 10)], axis=1)
    c = np.corrcoef(x)
    assert c[0, 1] == pytest.approx(math.exp(-30 / 50), abs=0.03)
    assert c[0, 2] == pytest.approx(math.exp(-300 / 50), abs=0.03)
    # Adding a device does not change the others' values.
    first_two = correlated_normals(z[:2, 0], positions[:2], 50.0)
    np.testing.assert_allclose(correlated_normals(z[:, 0], positions, 50.0)[:2], first_two, rtol=1e-12)
