import subprocess
import sys

import numpy as np
import pytest

from channel import db_to_lin, dbm_to_watt, lin_to_db, watt_to_dbm


def test_known_values():
    assert db_to_lin(0.0) == 1.0
    assert db_to_lin(10.0) == pytest.approx(10.0, rel=1e-15)
    assert db_to_lin(-3.0) == pytest.approx(0.501187, rel=1e-6)
    assert dbm_to_watt(23.0) == pytest.approx(0.199526, rel=1e-5)
    assert dbm_to_watt(30.0) == pytest.approx(1.0, rel=1e-15)
    assert watt_to_dbm(1e-3) == pytest.approx(0.0, abs=1e-12)
    assert lin_to_db(100.0) == pytest.approx(20.0, rel=1e-15)


def test_round_trips_on_arrays():
    x_db = np.linspace(-150.0, 60.0, 101).reshape(1, 101)
    np.testing.assert_allclose(lin_to_db(db_to_lin(x_db)), x_db, rtol=0, atol=1e-12)
    np.testing.assert_allclose(watt_to_dbm(dbm_to_watt(x_db)), x_db, rtol=0, atol=1e-12)
    assert db_to_lin(x_db).shape == (1, 101)


def test_zero_power_is_minus_infinity_and_negative_is_an_error():
    assert watt_to_dbm(0.0) == -np.inf
    with pytest.raises(ValueError, match=r"x_w\(=-1.0\) must be >= 0"):
        watt_to_dbm(-1.0)
    with pytest.raises(ValueError, match="x_lin"):
        lin_to_db([1.0, -0.5])


def test_channel_imports_neither_simpy_nor_torch():
    code = "import sys, channel; print(sorted(m for m in ('simpy', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
