import math

import numpy as np
import pytest

from channel import BlockFading, RadioLink, Transfer, TransferError, noise_power_w

B_HZ = 180e3
SUBCHANNELS = [0, 3, 7]
POWER_W = np.array([0.05, 0.1, 0.0495])
BETA_LIN = 10 ** (-(128.1 + 37.6 * math.log10(0.3)) / 10)  # 300 m, no shadowing
NOISE_W = 10 ** ((-174.0 + 5.0) / 10.0) * 1e-3 * B_HZ  # by hand, NF 5 dB


def _link(*, enabled, block_s=0.01, rho=0.5, seed=1, power_w=POWER_W, subchannels=SUBCHANNELS):
    fading = BlockFading(np.random.default_rng(seed), 10, block_s=block_s, rho=rho, enabled=enabled)
    return RadioLink(subchannels=subchannels, power_w=power_w, bandwidth_hz=B_HZ,
                     large_scale_gain_lin=BETA_LIN, fading=fading, noise_power_w=NOISE_W)


def _block_of(t_s, block_s):
    """Block b with b T <= t < (b + 1) T, T times b computed in floating point as the boundaries are."""
    b = int(t_s // block_s)
    while (b + 1) * block_s <= t_s:
        b += 1
    while b * block_s > t_s:
        b -= 1
    return b


def _n_blocks(t0_s, t1_s, block_s):
    """Blocks that overlap [t0, t1) with positive length."""
    first, last = _block_of(t0_s, block_s), _block_of(t1_s, block_s)
    if last > first and last * block_s >= t1_s:
        last -= 1
    return last - first + 1


def _hand_rate_bps(link, block):
    """Sum over the link's subchannels of B log2(1 + p beta |h|^2 / N), written out."""
    g = link.fading.power_gain(block)
    return sum(B_HZ * math.log2(1 + p * BETA_LIN * g[n] / NOISE_W) for n, p in zip(SUBCHANNELS, POWER_W))


def _brute_force_end_s(link, bits, t0_s):
    """Step block by block: use each block's rate until the bits are sent."""
    block_s = link.fading.block_s
    b = _block_of(t0_s, block_s)
    t_s, left = t0_s, bits
    while True:
        r = _hand_rate_bps(link, b)
        block_end_s = (b + 1) * block_s
        if r * (block_end_s - t_s) >= left:
            return t_s + left / r, b
        left -= r * (block_end_s - t_s)
        t_s, b = block_end_s, b + 1


def _bits_delivered(link, t0_s, t1_s):
    """Integral of the rate over [t0, t1], block by block."""
    block_s = link.fading.block_s
    total, b = 0.0, _block_of(t0_s, block_s)
    while b * block_s < t1_s:
        overlap_s = min(t1_s, (b + 1) * block_s) - max(t0_s, b * block_s)
        total += _hand_rate_bps(link, b) * overlap_s
        b += 1
    return total


def test_static_rate_and_snr_by_hand():
    link = _link(enabled=False)
    snr = POWER_W * BETA_LIN / NOISE_W
    rate_bps = float(np.sum(B_HZ * np.log2(1 + snr)))
    assert link.rate_bps(0) == pytest.approx(rate_bps, rel=1e-13)
    np.testing.assert_allclose(link.rates_bps(9), B_HZ * np.log2(1 + snr), rtol=1e-13)
    assert link.snr_db(4) == pytest.approx(np.mean(10 * np.log10(snr)), rel=1e-13)


@pytest.mark.parametrize(
    "seconds_of_data, t0_s",
    [(0.003, 0.0123), (0.0077, 0.0123), (12.3456, 0.0123), (12.3456, 0.0), (4.0, 0.05), (0.01, 1e4 + 0.005)],
)
def test_static_transfer_is_exact(seconds_of_data, t0_s):
    link = _link(enabled=False, block_s=1e-3)
    rate_bps = float(np.sum(B_HZ * np.log2(1 + POWER_W * BETA_LIN / NOISE_W)))
    bits = rate_bps * seconds_of_data
    out = link.transfer(bits, t0_s)
    assert isinstance(out, Transfer)
    assert out.duration_s == pytest.approx(bits / rate_bps, rel=1e-12)
    assert out.mean_rate_bps == pytest.approx(rate_bps, rel=1e-12)
    assert out.bits == bits
    assert out.n_blocks == _n_blocks(t0_s, t0_s + out.duration_s, 1e-3)


def test_rho_one_is_static_too():
    link = _link(enabled=True, rho=1.0, block_s=1e-3)
    rate_bps = link.rate_bps(0)
    assert link.rate_bps(5000) == rate_bps
    assert link.transfer(rate_bps * 7.5, 0.0003).duration_s == pytest.approx(7.5, rel=1e-12)


@pytest.mark.parametrize("rho", [0.0, 0.9])
@pytest.mark.parametrize("bits, t0_s", [(1e3, 0.0123), (2e5, 0.0123), (5e6, 0.0123), (4e7, 0.5), (3e5, 0.03)])
def test_fading_transfer_matches_brute_force(rho, bits, t0_s):
    link = _link(enabled=True, rho=rho)
    out = link.transfer(bits, t0_s)
    end_s, last_block = _brute_force_end_s(link, bits, t0_s)
    assert out.duration_s == pytest.approx(end_s - t0_s, rel=1e-9)
    assert out.n_blocks == last_block - _block_of(t0_s, link.fading.block_s) + 1
    assert _bits_delivered(link, t0_s, t0_s + out.duration_s) == pytest.approx(bits, rel=1e-9)
    assert out.mean_rate_bps == pytest.approx(bits / out.duration_s, rel=1e-15)
    assert out.snr_db == link.snr_db(link.fading.block_index(t0_s))


def test_transfer_spanning_thousands_of_fading_blocks():
    link = _link(enabled=True, rho=0.7, block_s=1e-3)
    bits = 2e7  # about 4,000 blocks of 1 ms at 4.6 Mbit/s
    out = link.transfer(bits, 0.0004)
    rates_bps = np.array([_hand_rate_bps(link, b) for b in range(out.n_blocks)])
    assert out.n_blocks > 3000
    # whole blocks in the middle, the rest of block 0 and part of the last block
    delivered = rates_bps[0] * 0.0006 + rates_bps[1:-1].sum() * 1e-3
    partial_s = out.duration_s - (0.0006 + (out.n_blocks - 2) * 1e-3)
    assert 0 < partial_s <= 1e-3
    assert delivered + rates_bps[-1] * partial_s == pytest.approx(bits, rel=1e-10)


def test_transfer_starting_on_a_boundary_uses_the_new_block():
    link = _link(enabled=True, rho=0.0, block_s=0.076)
    t0_s = link.fading.block_start_s(7)
    assert link.fading.block_index(t0_s) == 7
    bits = 0.5 * link.rate_bps(7) * 0.076
    out = link.transfer(bits, t0_s)
    assert out.duration_s == pytest.approx(bits / link.rate_bps(7), rel=1e-14)
    assert out.n_blocks == 1
    # exactly one whole block (block 0, whose length is exactly 0.076 s): ends on the boundary, one block
    assert link.transfer(link.rate_bps(0) * 0.076, 0.0).n_blocks == 1
    assert link.transfer(link.rate_bps(0) * 0.076 * 1.001, 0.0).n_blocks == 2


def test_zero_bits_take_no_time():
    out = _link(enabled=True).transfer(0, 1.234)
    assert out.duration_s == 0.0 and out.bits == 0.0 and out.n_blocks == 0
    assert _link(enabled=True, subchannels=[], power_w=[]).transfer(0.0, 0.0).duration_s == 0.0


def test_a_transfer_that_can_never_finish_is_an_error():
    with pytest.raises(TransferError, match="can never finish"):
        _link(enabled=True, subchannels=[], power_w=[]).transfer(1e3, 0.0)
    with pytest.raises(TransferError, match="can never finish"):
        _link(enabled=False, power_w=0.0).transfer(1e3, 0.0)
    with pytest.raises(TransferError, match=r"max_blocks\(=100\)"):
        _link(enabled=True).transfer(1e9, 0.0, max_blocks=100)
    with pytest.raises(TransferError, match=r"max_blocks\(=100\)"):
        _link(enabled=False).transfer(1e9, 0.0, max_blocks=100)


def test_constructor_checks():
    with pytest.raises(ValueError, match="subchannels"):
        _link(enabled=False, subchannels=[0, 0, 1])
    with pytest.raises(ValueError, match="subchannels"):
        _link(enabled=False, subchannels=[0, 3, 10])
    with pytest.raises(ValueError, match="power_w"):
        _link(enabled=False, power_w=[0.1, 0.1])
    with pytest.raises(ValueError, match="power_w"):
        _link(enabled=False, power_w=[0.1, -0.1, 0.1])


def test_snr_db_is_the_mean_of_per_subchannel_db_over_powered_subchannels():
    link = _link(enabled=True, power_w=np.array([0.05, 0.0, 0.1]))
    g = link.fading.power_gain(2)
    expected = np.mean([10 * math.log10(p * BETA_LIN * g[n] / NOISE_W) for n, p in [(0, 0.05), (7, 0.1)]])
    assert link.snr_db(2) == pytest.approx(expected, rel=1e-13)
    assert _link(enabled=True, power_w=0.0).snr_db(2) == -np.inf


def test_downlink_reuses_the_fading_with_base_station_power_and_device_noise():
    up = _link(enabled=True, rho=0.3)
    down = RadioLink.downlink_from(up, power_w=1.0, noise_figure_db=9.0)
    device_noise_w = 10 ** ((-174.0 + 9.0) / 10.0) * 1e-3 * B_HZ
    assert down.noise_power_w[0] == pytest.approx(device_noise_w, rel=1e-12)
    assert down.fading is up.fading
    for b in [0, 5, 300]:
        g = up.fading.power_gain(b)
        expected = sum(B_HZ * math.log2(1 + 1.0 * BETA_LIN * g[n] / device_noise_w) for n in SUBCHANNELS)
        assert down.rate_bps(b) == pytest.approx(expected, rel=1e-13)
    assert noise_power_w(B_HZ, noise_figure_db=9.0) == pytest.approx(device_noise_w, rel=1e-12)
