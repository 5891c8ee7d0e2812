"""Link abstraction: from the SINR of a link's subchannels to the bits it delivers.

Three rate models, chosen by ``channel.rate_model``:

- :class:`Shannon` (default): ``r_n = B_n log2(1 + g_n)`` on each subchannel.
- :class:`CappedShannon`: the attenuated and truncated Shannon bound of 3GPP TR
  36.942 Annex A.2: ``r_n = 0`` for ``g_n < g_min``, ``B_n min(alpha log2(1 + g_n),
  SE_max)`` otherwise. Defaults (TR 36.942 Table A.2.1, downlink): alpha = 0.6,
  g_min = -10 dB, SE_max = 4.4 bit/s/Hz; the uplink row there is alpha = 0.4,
  SE_max = 2.0. These numbers are quoted from TR 36.942 v8+ as commonly cited;
  they were not re-read from the document when this module was written.
- :class:`Mcs`: a TS 38.214 MCS table (:mod:`channel.mcs_tables`). On each fading
  block the link's subchannels are mapped to one effective SINR per MCS, by EESM
  (Brueninghaus et al., PIMRC 2005; beta per MCS from 5G-LENA),

  .. math:: g_\\mathrm{eff}(\\beta) = -\\beta \\ln \\frac{1}{N} \\sum_n e^{-g_n / \\beta},

  or by the mean SINR; the block uses the MCS of highest spectral efficiency
  whose effective SINR clears the SINR the MCS needs for the target BLER
  (MCS 0 when none does). A transport block of ``SE B slot_s`` bits goes out
  per slot; it fails with ``BLER_m(g)``, a logistic curve in dB through the
  table's 10 % point; a failed block is retransmitted (HARQ, chase combining:
  the j-th transmission is decoded at ``j g_eff``) up to ``max_transmissions``;
  a block lost after the last one is sent again as a new block. See
  :mod:`channel.harq` for the timing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from channel import _check
from channel.mcs_tables import McsTable, mcs_table
from channel.units import db_to_lin, lin_to_db

__all__ = ["RateModel", "Shannon", "CappedShannon", "Mcs", "RATE_MODELS", "bler", "required_sinr_db", "eesm_db",
           "select_mcs"]

RATE_MODELS = ("shannon", "shannon_capped", "mcs")


def bler(table: McsTable, mcs: ArrayLike, sinr_db: ArrayLike) -> np.ndarray:
    """Block error rate of MCS ``mcs`` at SINR ``sinr_db``: ``1 / (1 + 9 exp(a (g - g10)))`` (module docstring)."""
    m = np.asarray(mcs, dtype=int)
    x = table.slope_per_db[m] * (np.asarray(sinr_db, dtype=float) - table.sinr10_db[m])
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + 9.0 * np.exp(np.clip(x, -700.0, 700.0)))


def required_sinr_db(table: McsTable, target_bler: float) -> np.ndarray:
    """SINR (dB) at which each MCS reaches ``target_bler``: ``g10 + ln((1/t - 1)/9) / a``, shape ``(M,)``."""
    t = float(target_bler)
    if not 0.0 < t < 1.0:
        raise ValueError(f"target_bler(={target_bler!r}) must be in (0, 1)")
    return table.sinr10_db + np.log((1.0 / t - 1.0) / 9.0) / table.slope_per_db


def eesm_db(sinr_lin: ArrayLike, beta: ArrayLike) -> np.ndarray:
    """Effective SINR in dB of subchannels ``sinr_lin`` (..., N) for each beta (M,), shape (..., M).

    ``-beta ln(mean_n exp(-g_n / beta))``, computed as a log-sum-exp so that large
    SINR over small beta does not underflow. Equals g when every g_n = g.
    """
    g = np.asarray(sinr_lin, dtype=float)[..., None, :]
    b = np.asarray(beta, dtype=float)[:, None]
    x = -g / b
    top = x.max(axis=-1, keepdims=True)
    lme = top[..., 0] + np.log(np.mean(np.exp(x - top), axis=-1))
    return lin_to_db(np.maximum(-b[:, 0] * lme, 0.0))


def select_mcs(effective_db: ArrayLike, required_db: ArrayLike, spectral_efficiency: ArrayLike) -> np.ndarray:
    """Index of the MCS of highest spectral efficiency with ``effective_db >= required_db`` (0 if none).

    ``effective_db`` has shape (..., M) (one effective SINR per MCS) or (...,) (the same for all).
    Ties in spectral efficiency go to the lower index.
    """
    eff = np.asarray(effective_db, dtype=float)
    req = np.asarray(required_db, dtype=float)
    if eff.ndim == 0 or eff.shape[-1] != req.size:
        eff = eff[..., None]
    ok = eff >= req
    score = np.where(ok, np.asarray(spectral_efficiency, dtype=float), -1.0)
    return np.where(ok.any(axis=-1), np.argmax(score, axis=-1), 0)


class RateModel:
    """Interface of a rate model (module docstring)."""

    name = "base"
    #: True when transfers draw block errors (the link then needs an error stream).
    random = False

    def rates_bps(self, bandwidth_hz: ArrayLike, sinr_lin: ArrayLike) -> np.ndarray:  # pragma: no cover
        """Error-free rate of each subchannel, bit/s, broadcast shape."""
        raise NotImplementedError


@dataclass(frozen=True)
class Shannon(RateModel):
    """``B log2(1 + g)``."""

    name = "shannon"

    def rates_bps(self, bandwidth_hz, sinr_lin):
        b_hz = np.asarray(bandwidth_hz, dtype=float)
        return b_hz * np.log1p(np.asarray(sinr_lin, dtype=float)) / np.log(2.0)


@dataclass(frozen=True)
class CappedShannon(RateModel):
    """TR 36.942 A.2: ``0`` below ``min_sinr_db``, else ``B min(fraction log2(1 + g), max_se)``."""

    fraction: float = 0.6
    max_se_bps_per_hz: float = 4.4
    min_sinr_db: float = -10.0

    name = "shannon_capped"

    def __post_init__(self):
        _check.positive("fraction", self.fraction)
        _check.positive("max_se_bps_per_hz", self.max_se_bps_per_hz)

    def rates_bps(self, bandwidth_hz, sinr_lin):
        g = np.asarray(sinr_lin, dtype=float)
        se = np.minimum(self.fraction * np.log1p(g) / np.log(2.0), self.max_se_bps_per_hz)
        return np.asarray(bandwidth_hz, dtype=float) * np.where(g >= db_to_lin(self.min_sinr_db), se, 0.0)


@dataclass(frozen=True)
class Mcs(RateModel):
    """A TS 38.214 MCS table with block errors and HARQ (module docstring).

    Parameters
    ----------
    table : {"qam64", "qam256"}
    target_bler : float
        The BLER the MCS choice aims at (0.1).
    max_transmissions : int
        HARQ transmissions of a block, the first included (4).
    slot_s : float
        Transmission time interval, s (1 ms: a 15 kHz NR slot / an LTE subframe).
    effective_sinr : {"eesm", "mean"}
        How the SINRs of a link's subchannels are combined.
    """

    table: str = "qam64"
    target_bler: float = 0.1
    max_transmissions: int = 4
    slot_s: float = 1e-3
    effective_sinr: str = "eesm"

    name = "mcs"
    random = True

    def __post_init__(self):
        mcs_table(self.table)
        required_sinr_db(mcs_table(self.table), self.target_bler)
        if _check.count("max_transmissions", self.max_transmissions) < 1:
            raise ValueError(f"max_transmissions(={self.max_transmissions!r}) must be >= 1")
        _check.positive("slot_s", self.slot_s)
        if self.effective_sinr not in ("eesm", "mean"):
            raise ValueError(f"effective_sinr(={self.effective_sinr!r}) must be 'eesm' or 'mean'")

    @property
    def mcs(self) -> McsTable:
        return mcs_table(self.table)

    def block_mcs(self, sinr_lin: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """MCS of each block and its effective SINR (dB), for SINRs ``(n_blocks, N)`` of the link's subchannels."""
        t = self.mcs
        g = np.asarray(sinr_lin, dtype=float)
        if self.effective_sinr == "eesm":
            eff = eesm_db(g, t.eesm_beta)
        else:
            eff = np.repeat(lin_to_db(np.mean(g, axis=-1))[..., None], len(t), axis=-1)
        m = select_mcs(eff, required_sinr_db(t, self.target_bler), t.spectral_efficiency)
        return m, np.take_along_axis(eff, m[..., None], axis=-1)[..., 0]

    def rates_bps(self, bandwidth_hz, sinr_lin):
        """Error-free MCS rate of one subchannel on its own: ``B SE_m(g)`` (for prediction)."""
        t = self.mcs
        g_db = lin_to_db(np.asarray(sinr_lin, dtype=float))
        m = select_mcs(g_db, required_sinr_db(t, self.target_bler), t.spectral_efficiency)
        return np.asarray(bandwidth_hz, dtype=float) * t.spectral_efficiency[m]
