"""Link abstraction: TS 38.214 tables, MCS choice, block errors and HARQ, the capped Shannon bound."""

import math

import numpy as np
import pytest

from channel import BlockFading, RadioLink
from channel.linkmodel import CappedShannon, Mcs, Shannon, eesm_db, required_sinr_db
from channel.mcs_tables import MCS_TABLES, mcs_table


def test_spectral_efficiencies_are_the_tables():
    assert mcs_table("qam64").spectral_efficiency[28] == pytest.approx(5.5547, abs=1e-4)
    assert mcs_table("qam256").spectral_efficiency[27] == pytest.approx(7.4062, abs=1e-4)
    assert len(mcs_table("qam64")) == 29 and len(mcs_table("qam256")) == 28
    for table in MCS_TABLES.values():
        # The printed column is Qm x R / 1024 rounded to 4 decimals: a check of the transcription.
        np.testing.assert_allclose(table.se_printed, table.qm * table.rate_x1024 / 1024, atol=5.1e-5)
        assert set(np.unique(table.qm)) <= {2, 4, 6, 8}


@pytest.mark.parametrize("name", sorted(MCS_TABLES))
def test_mcs_rate_never_exceeds_shannon(name):
    model = Mcs(table=name)
    sinr_db = np.linspace(-15, 40, 2001)
    g = 10 ** (sinr_db / 10)
    mcs_rate = model.rates_bps(1.0, g)
    shannon = np.log2(1 + g)
    chosen = mcs_rate[sinr_db >= required_sinr_db(mcs_table(name), 0.1)[0]]
    assert np.all(chosen <= shannon[sinr_db >= required_sinr_db(mcs_table(name), 0.1)[0]])
    # At each MCS's own threshold its efficiency is below the Shannon bound there.
    t = mcs_table(name)
    assert np.all(t.spectral_efficiency < np.log2(1 + 10 ** (t.sinr10_db / 10)))


def test_eesm_of_equal_sinrs_is_that_sinr_and_lies_between_min_and_mean():
    beta = mcs_table("qam64").eesm_beta
    np.testing.assert_allclose(eesm_db(np.full(6, 10.0), beta), 10.0, atol=1e-9)
    g = np.array([0.5, 3.0, 40.0, 200.0])
    eff = 10 ** (eesm_db(g, beta) / 10)
    assert np.all(eff >= g.min() * (1 - 1e-12)) and np.all(eff <= g.mean() * (1 + 1e-12))


def test_capped_shannon():
    model = CappedShannon()
    g = 10 ** (np.array([-20.0, -9.0, 0.0, 40.0]) / 10)
    se = model.rates_bps(1.0, g)
    assert se[0] == 0.0  # under -10 dB nothing is delivered
    assert se[1] == pytest.approx(0.6 * math.log2(1 + g[1]))
    assert se[3] == pytest.approx(4.4)
    assert np.all(se <= Shannon().rates_bps(1.0, g))


def _static_link(sinr_db, model, seed=0, n_sub=1, bandwidth_hz=180e3):
    fading = BlockFading(np.random.default_rng(0), n_sub, block_s=1.0, rho=1.0, enabled=False)
    noise_w = 1e-13
    power_w = noise_w * 10 ** (sinr_db / 10)
    return RadioLink(subchannels=range(n_sub), power_w=power_w, bandwidth_hz=bandwidth_hz, large_scale_gain_lin=1.0,
                     fading=fading, noise_power_w=noise_w, rate_model=model, error_rng=np.random.default_rng(seed))


def test_realised_bler_matches_the_target_within_binomial_error():
    table, m = mcs_table("qam64"), 12
    sinr_db = required_sinr_db(table, 0.1)[m] + 1e-9  # exactly where MCS 12 has BLER 10 %
    model = Mcs(table="qam64", max_transmissions=1, effective_sinr="mean")
    link = _static_link(sinr_db, model)
    tbs_bits = table.spectral_efficiency[m] * 180e3 * 1e-3
    tx = link.transfer(30_000 * tbs_bits, 0.0)
    assert tx.mcs == m
    sent = round(tx.duration_s / 1e-3)
    failures = tx.retransmissions
    assert sent == 30_000 + failures
    se = math.sqrt(0.1 * 0.9 / sent)
    assert failures / sent == pytest.approx(0.1, abs=5 * se)


def test_harq_with_chase_combining_matches_its_expected_transmissions():
    table, m, h = mcs_table("qam256"), 20, 4
    g_db = required_sinr_db(table, 0.1)[m] - 1.0 + 1e-9  # below the threshold: many first transmissions fail
    model = Mcs(table="qam256", max_transmissions=h, effective_sinr="mean", target_bler=0.1)
    # The MCS choice at g_db is the one whose threshold g_db clears; find it, then recompute its BLER by hand.
    link = _static_link(g_db, model, seed=3)
    tx = link.transfer(1e6, 0.0)
    m = tx.mcs
    a, g10 = table.slope_per_db[m], table.sinr10_db[m]
    p = [1 / (1 + 9 * math.exp(a * (10 * math.log10(j * 10 ** (g_db / 10)) - g10))) for j in range(1, h + 1)]
    survive = np.cumprod([1.0] + p)  # P(more than j transmissions), j = 0..h
    per_try = survive[:h].sum()
    lost = survive[h]
    expected = per_try / (1 - lost)  # transmissions per delivered block
    n_tbs = 40_000
    tbs_bits = table.spectral_efficiency[m] * 180e3 * 1e-3
    tx = _static_link(g_db, model, seed=4).transfer(n_tbs * tbs_bits, 0.0)
    sent = round(tx.duration_s / 1e-3)
    assert sent == n_tbs + tx.retransmissions
    assert sent / n_tbs == pytest.approx(expected, rel=0.02)


def test_error_free_mcs_transfer_takes_whole_slots():
    model = Mcs(table="qam64")
    link = _static_link(40.0, model)  # far above MCS 28: no errors in practice
    tbs_bits = 5.5547 * 180e3 * 1e-3
    tx = link.transfer(10.5 * tbs_bits, 0.2)
    assert tx.duration_s == pytest.approx(11 * 1e-3)
    assert tx.retransmissions == 0 and tx.mcs == 28
    assert tx.energy_j == pytest.approx(float(link.power_w.sum()) * tx.duration_s)


def test_an_mcs_transfer_that_can_never_finish_is_refused():
    from channel import TransferError

    with pytest.raises(TransferError, match="never finish"):
        _static_link(-30.0, Mcs()).transfer(1e4, 0.0)


def test_mcs_transfer_under_fading_is_reproducible_and_uses_the_error_stream():
    def run(seed):
        fading = BlockFading(np.random.default_rng(9), 4, block_s=0.01, rho=0.5)
        link = RadioLink(subchannels=[0, 1, 2, 3], power_w=0.05, bandwidth_hz=180e3, large_scale_gain_lin=1e-10,
                         fading=fading, noise_power_w=1e-13, rate_model=Mcs(), error_rng=np.random.default_rng(seed))
        return [link.transfer(2e5, t) for t in (0.0, 0.37, 1.1)]
    a, b, c = run(1), run(1), run(2)
    assert [x.duration_s for x in a] == [x.duration_s for x in b]
    assert [x.retransmissions for x in a] != [x.retransmissions for x in c] or \
        [x.duration_s for x in a] != [x.duration_s for x in c]
    assert all(x.n_blocks > 1 for x in a)


def test_a_link_under_every_threshold_is_refused_under_fading_too():
    from channel import TransferError

    for model in (Mcs(), CappedShannon()):
        fading = BlockFading(np.random.default_rng(5), 2, block_s=0.002, rho=0.0)
        link = RadioLink(subchannels=[0, 1], power_w=1e-6, bandwidth_hz=180e3, large_scale_gain_lin=1e-12,
                         fading=fading, noise_power_w=1e-13, rate_model=model, error_rng=np.random.default_rng(1))
        with pytest.raises(TransferError, match="delivered nothing"):
            link.transfer(1e5, 0.0)
