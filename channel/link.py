"""A radio link: the rate a client gets on its subchannels, and how long a transfer takes.

On block b the link's rate is the sum over its subchannels,

.. math:: r_b = \\sum_{n} B_n \\log_2\\left(1 + \\frac{p_n \\beta |h_{n,b}|^2}{N_n}\\right),

piecewise constant in time on the fading blocks. A transfer of D bits that
starts at :math:`t_0` ends at the first :math:`t_1` with
:math:`\\int_{t_0}^{t_1} r(t)\\, dt = D`.

Uplink and downlink are the same class. The downlink (:meth:`RadioLink.downlink_from`)
reuses the uplink's subchannels, large-scale gain and small-scale fading:
by channel reciprocity in time-division duplexing (TDD) both directions see
the same :math:`h_{n,b}` on the same subchannels; only the transmit power
(the base station's) and the receiver noise (the device's noise figure) change.

Options (each off by default, so the rate above is today's): a rate model other
than Shannon (:mod:`channel.linkmodel`: the capped Shannon bound, or an MCS table
with block errors and HARQ, :mod:`channel.harq`), a large-scale gain that changes
from block to block as the device moves (:class:`channel.largescale.LargeScale`:
then :math:`\\beta` above is :math:`\\beta_b`), and a circuit power added to the
transmit power in the transfer's energy, ``(sum_n p_n + P_circuit) duration``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from channel import _check
from channel.errors import TransferError
from channel.fading import BlockFading
from channel.harq import STALL_BLOCKS, mcs_transfer
from channel.linkmodel import RateModel
from channel.rate import noise_power_w as _noise_power_w
from channel.rate import shannon_rate_bps
from channel.transfer import Transfer
from channel.units import lin_to_db

__all__ = ["Transfer", "RadioLink"]


class RadioLink:
    """The subchannels, powers and gains that carry one client's data in one direction.

    Parameters
    ----------
    subchannels : sequence of int
        Distinct indices, into ``fading``'s subchannels, of the subchannels this
        link uses; shape ``(n,)``, possibly empty.
    power_w : array_like
        Transmit power p_n in W on each listed subchannel, shape ``(n,)`` or a scalar.
    bandwidth_hz : array_like
        Bandwidth B_n in Hz of each listed subchannel, shape ``(n,)`` or a scalar.
    large_scale_gain_lin : float
        Path loss and shadowing gain beta (linear, >= 0) of the client.
    fading : BlockFading
        The client's small-scale fading on all subchannels.
    noise_power_w : array_like
        Receiver noise N_n in W on each listed subchannel (over B_n), shape ``(n,)`` or a scalar.
    rate_model : RateModel, optional
        :mod:`channel.linkmodel`; None: Shannon.
    error_rng : numpy.random.Generator, optional
        This link's block-error stream; required by a rate model that draws errors (``mcs``).
    large_scale : LargeScale, optional
        A large-scale gain that changes from block to block (a moving device); it
        replaces ``large_scale_gain_lin`` in the rates.
    distance_m : float
        Distance to the base station (static devices), m, reported with each transfer.
    circuit_power_w : float
        Power drawn by the transmitter's circuits while it sends, added to the
        transmit power in a transfer's energy, W.
    """

    #: Default cap on the number of fading blocks a transfer may span.
    MAX_BLOCKS = 10_000_000

    def __init__(self, *, subchannels: Sequence[int], power_w: ArrayLike, bandwidth_hz: ArrayLike,
                 large_scale_gain_lin: float, fading: BlockFading, noise_power_w: ArrayLike,
                 rate_model: RateModel | None = None, error_rng: np.random.Generator | None = None,
                 large_scale=None, distance_m: float = float("nan"), circuit_power_w: float = 0.0):
        idx = np.asarray(subchannels)
        if idx.size == 0:
            idx = idx.astype(np.intp)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"subchannels(={subchannels!r}) must be a sequence of int")
        if np.any((idx < 0) | (idx >= fading.n_subchannels)) or len(set(idx.tolist())) != idx.size:
            raise ValueError(
                f"subchannels(={subchannels!r}) must be distinct indices in [0, {fading.n_subchannels})"
            )
        n = idx.size
        self.subchannels = _frozen(idx)
        self.power_w = _frozen(_per_subchannel("power_w", _check.non_negative("power_w", power_w), n))
        self.bandwidth_hz = _frozen(
            _per_subchannel("bandwidth_hz", _check.positive("bandwidth_hz", bandwidth_hz), n)
        )
        self.noise_power_w = _frozen(
            _per_subchannel("noise_power_w", _check.positive("noise_power_w", noise_power_w), n)
        )
        self.large_scale_gain_lin = float(_check.non_negative("large_scale_gain_lin", large_scale_gain_lin))
        self.fading = fading
        #: SNR per subchannel without small-scale fading, p_n beta / N_n (linear), shape (n,).
        self.mean_snr_lin = _frozen(self.power_w * self.large_scale_gain_lin / self.noise_power_w)
        self.rate_model = rate_model
        if rate_model is not None and rate_model.random and error_rng is None:
            raise ValueError(f"error_rng is required by the rate model {rate_model.name!r}")
        self.error_rng = error_rng
        self.large_scale = large_scale
        self.distance_m = float(distance_m)
        self.circuit_power_w = float(_check.non_negative("circuit_power_w", circuit_power_w))
        # p_n / N_n: the SNR per unit of large-scale gain, when that gain changes along a path.
        self._snr_per_gain = self.power_w / self.noise_power_w

    @property
    def is_static(self) -> bool:
        """True if the rates are the same in every block (static fading and a device that does not move)."""
        return self.fading.is_static and (self.large_scale is None or self.large_scale.is_static)

    def with_allocation(self, subchannels: Sequence[int], power_w: ArrayLike, *, bandwidth_hz: ArrayLike,
                        noise_power_w: ArrayLike) -> RadioLink:
        """This link on other subchannels and powers; the same fading, gains, rate model and error stream."""
        return RadioLink(subchannels=subchannels, power_w=power_w, bandwidth_hz=bandwidth_hz,
                         large_scale_gain_lin=self.large_scale_gain_lin, fading=self.fading,
                         noise_power_w=noise_power_w, rate_model=self.rate_model, error_rng=self.error_rng,
                         large_scale=self.large_scale, distance_m=self.distance_m,
                         circuit_power_w=self.circuit_power_w)

    @classmethod
    def downlink_from(cls, uplink: RadioLink, *, power_w: ArrayLike, noise_figure_db: float,
                      noise_psd_dbm_per_hz: float = -174.0,
                      error_rng: np.random.Generator | None = None) -> RadioLink:
        """The downlink of a client on the subchannels of its uplink (TDD reciprocity).

        Keeps the uplink's subchannels, bandwidths, large-scale gain and
        fading process (the same h in the same block); replaces the power by
        the base station's and the noise by that of the device's receiver.

        Parameters
        ----------
        uplink : RadioLink
            The client's uplink.
        power_w : array_like
            Base-station transmit power in W on each of the link's subchannels, shape ``(n,)`` or a scalar.
        noise_figure_db : float
            The device's noise figure in dB (default scenario: 9 dB).
        noise_psd_dbm_per_hz : float
            Thermal noise density in dBm/Hz.
        error_rng : numpy.random.Generator, optional
            The downlink's own block-error stream (rate model ``mcs``).
        """
        noise_w = _noise_power_w(uplink.bandwidth_hz, noise_figure_db=noise_figure_db,
                                 noise_psd_dbm_per_hz=noise_psd_dbm_per_hz)
        return cls(subchannels=uplink.subchannels, power_w=power_w, bandwidth_hz=uplink.bandwidth_hz,
                   large_scale_gain_lin=uplink.large_scale_gain_lin, fading=uplink.fading,
                   noise_power_w=noise_w, rate_model=uplink.rate_model, error_rng=error_rng,
                   large_scale=uplink.large_scale, distance_m=uplink.distance_m)

    def rates_bps(self, block: int) -> np.ndarray:
        """Rate on each listed subchannel in block ``block``, in bit/s, shape ``(n,)``."""
        return self._rates(block, block + 1)[0]

    def rate_bps(self, block: int) -> float:
        """Total rate of the link in block ``block``, in bit/s."""
        return float(self._rates(block, block + 1)[0].sum())

    def snr_db(self, block: int) -> float:
        """SNR of the link in block ``block``, in dB.

        Defined as the mean, over the listed subchannels that carry positive
        power, of the per-subchannel SNR in dB,
        :math:`\\frac{1}{|S|} \\sum_{n \\in S} 10 \\log_{10}(p_n \\beta |h_{n,b}|^2 / N_n)`;
        ``-inf`` if no subchannel carries power.
        """
        used = self.power_w > 0.0
        if not np.any(used):
            return float("-inf")
        return float(np.mean(lin_to_db(self.sinr_lin(block, block + 1)[0][used])))

    def sinr_lin(self, first: int, stop: int) -> np.ndarray:
        """SNR of each listed subchannel in blocks ``first <= b < stop``, linear, shape ``(stop - first, n)``."""
        gains = self.fading.power_gains(first, stop, self.subchannels)
        if self.large_scale is None:
            return self.mean_snr_lin * gains
        return self._snr_per_gain * self.large_scale.gains_lin(first, stop)[:, None] * gains

    def distance_at_m(self, t_s: float) -> float:
        """The device's distance to the base station at ``t_s``, m (NaN if unknown)."""
        return self.large_scale.distance_m(t_s) if self.large_scale is not None else self.distance_m

    def transfer(self, bits: float, t_start_s: float, *, max_blocks: int | None = None) -> Transfer:
        """Send ``bits`` starting at ``t_start_s``; integrate the rate across fading blocks.

        The rest of the start block is used at that block's rate, then whole
        blocks, then part of the last one. The end is located from the block
        boundaries (:meth:`BlockFading.block_start_s`), not by summing many
        small durations; with a static channel (fading disabled or rho = 1)
        the duration is exactly ``bits / rate_bps``.

        Parameters
        ----------
        bits : float
            Number of bits to send, >= 0.
        t_start_s : float
            Start time in s, >= 0.
        max_blocks : int, optional
            Cap on the number of blocks spanned (default :attr:`MAX_BLOCKS`).

        Raises
        ------
        TransferError
            If ``bits > 0`` and no subchannel carries power with a positive
            gain (the transfer would never finish), or if it would span more
            than ``max_blocks`` blocks.
        """
        d_bits = float(_check.non_negative("bits", bits))
        t0_s = float(_check.non_negative("t_start_s", t_start_s))
        cap = self.MAX_BLOCKS if max_blocks is None else _check.count("max_blocks", max_blocks)
        fading = self.fading
        b0 = fading.block_index(t0_s)
        snr0_db = self.snr_db(b0)
        where = dict(distance_m=self.distance_at_m(t0_s))
        if d_bits == 0.0:
            return Transfer(0.0, 0.0, self.rate_bps(b0), 0, snr0_db, **where)
        if not np.any(self._snr_per_gain > 0.0) or (self.large_scale is None and not np.any(self.mean_snr_lin > 0.0)):
            raise TransferError(
                f"a transfer of {d_bits:g} bits can never finish: the link has no subchannel with "
                f"positive power and gain (subchannels={self.subchannels.tolist()}, "
                f"power_w={self.power_w.tolist()}, large_scale_gain_lin={self.large_scale_gain_lin!r})"
            )
        if self.rate_model is not None and self.rate_model.random:
            used = self.power_w > 0.0
            out = mcs_transfer(self.rate_model, self.error_rng, d_bits, t0_s,
                               sinr_lin=lambda first, stop: self.sinr_lin(first, stop)[:, used],
                               bandwidth_hz=float(self.bandwidth_hz[used].sum()), block_index=fading.block_index,
                               block_start_s=fading.block_start_s, static=self.is_static, max_blocks=cap)
            return self._finished(out.duration_s, d_bits, out.n_blocks, snr0_db, where,
                                  retransmissions=out.retransmissions, mcs=out.first_mcs)
        if self.is_static:
            rate_bps = self.rate_bps(b0)
            if not rate_bps > 0.0:
                raise TransferError(f"a transfer of {d_bits:g} bits can never finish: the link's rate is 0 "
                                    f"(SNR {snr0_db:.1f} dB under the rate model's minimum SINR)")
            duration_s = d_bits / rate_bps
            n_blocks = self._blocks_spanned(b0, t0_s + duration_s)
            if n_blocks > cap:
                raise self._cap_error(cap, d_bits, d_bits / duration_s)
            return self._finished(duration_s, d_bits, n_blocks, snr0_db, where)
        r0_bps = self.rate_bps(b0)
        head_s = fading.block_start_s(b0 + 1) - t0_s
        if d_bits <= r0_bps * head_s:
            duration_s = d_bits / r0_bps
            return self._finished(duration_s, d_bits, 1, snr0_db, where)
        remaining_bits = d_bits - r0_bps * head_s
        delivered_bits = 0.0  # over whole blocks after the first
        b, step = b0 + 1, 64
        while True:
            m = min(step, b0 + cap - b)
            if m <= 0:
                raise self._cap_error(cap, d_bits, r0_bps)
            rates_bps = self._rates(b, b + m).sum(axis=1)
            # Block lengths from the boundaries themselves, which drift from block_s by rounding far out.
            starts_s = fading.block_start_s(np.arange(b, b + m + 1))
            cum_bits = delivered_bits + np.cumsum(rates_bps * np.diff(starts_s))
            k = int(np.searchsorted(cum_bits, remaining_bits, side="left"))  # first cum >= remaining
            if k < m:
                before_bits = cum_bits[k - 1] if k > 0 else delivered_bits
                b_last = b + k
                tail_s = (remaining_bits - before_bits) / rates_bps[k]
                duration_s = (fading.block_start_s(b_last) - t0_s) + tail_s
                return self._finished(duration_s, d_bits, b_last - b0 + 1, snr0_db, where)
            delivered_bits = float(cum_bits[-1])
            if delivered_bits == 0.0 and r0_bps == 0.0 and b + m - b0 > STALL_BLOCKS:
                raise TransferError(f"a transfer of {d_bits:g} bits delivered nothing over {b + m - b0} fading "
                                    f"blocks: the link's SNR stays under the rate model's minimum SINR")
            b, step = b + m, min(2 * step, 65536)

    def bits_between(self, t_start_s: float, t_end_s: float) -> float:
        """Bits the link carries from ``t_start_s`` to ``t_end_s`` (what a transfer cut at ``t_end_s`` delivered).

        The integral of the piecewise-constant rate, :math:`\\int_{t_0}^{t_1} r(t)\\, dt`, block by block
        (under the ``mcs`` rate model, the error-free rate of each block's MCS: block errors are not redrawn).
        """
        t0_s = float(_check.non_negative("t_start_s", t_start_s))
        t1_s = float(t_end_s)
        if not t1_s >= t0_s:
            raise ValueError(f"t_end_s(={t_end_s!r}) must be >= t_start_s(={t_start_s!r})")
        fading = self.fading
        b0 = fading.block_index(t0_s)
        if self.is_static or t1_s == t0_s:
            return self.rate_bps(b0) * (t1_s - t0_s)
        b1 = fading.block_index(t1_s)
        edges_s = np.clip(fading.block_start_s(np.arange(b0, b1 + 2)), t0_s, t1_s)
        return float(np.sum(self._rates(b0, b1 + 1).sum(axis=1) * np.diff(edges_s)))

    def _finished(self, duration_s: float, bits: float, n_blocks: int, snr_db: float, where: dict,
                  **extra) -> Transfer:
        energy_j = (float(self.power_w.sum()) + self.circuit_power_w) * float(duration_s)
        return Transfer(float(duration_s), float(bits), float(bits / duration_s), int(n_blocks), float(snr_db),
                        energy_j=energy_j, **where, **extra)

    def _rates(self, first: int, stop: int) -> np.ndarray:
        """Error-free rates in bit/s, shape ``(stop - first, n)``."""
        return self.rates_from_sinr(self.sinr_lin(first, stop))

    def rates_from_sinr(self, sinr: np.ndarray) -> np.ndarray:
        """Error-free rates in bit/s of each listed subchannel at SINRs ``sinr`` (linear, shape ``(blocks, n)``)."""
        if self.rate_model is None:
            return shannon_rate_bps(self.bandwidth_hz, sinr)
        if self.rate_model.random:  # the rate of the block's MCS, spread over the subchannels by bandwidth
            used = self.power_w > 0.0
            out = np.zeros(sinr.shape)
            if np.any(used):
                mcs, _ = self.rate_model.block_mcs(sinr[:, used])
                se = self.rate_model.mcs.spectral_efficiency[mcs]
                out[:, used] = se[:, None] * self.bandwidth_hz[used]
            return out
        return self.rate_model.rates_bps(self.bandwidth_hz, sinr)

    def _blocks_spanned(self, b0: int, t_end_s: float) -> int:
        b_end = self.fading.block_index(t_end_s)
        if b_end > b0 and self.fading.block_start_s(b_end) >= t_end_s:
            b_end -= 1  # ends exactly on a boundary: the next block is not used
        return b_end - b0 + 1

    def _cap_error(self, cap: int, bits: float, rate_bps: float) -> TransferError:
        return TransferError(
            f"a transfer of {bits:g} bits would span more than max_blocks(={cap}) fading blocks of "
            f"{self.fading.block_s!r} s (rate {rate_bps:.3g} bit/s at the start): "
            f"check the allocation, the power and the distance"
        )


def _per_subchannel(name: str, value: np.ndarray, n: int) -> np.ndarray:
    if value.shape not in ((), (n,)):
        raise ValueError(f"{name} has shape {value.shape}, expected a scalar or ({n},)")
    return np.broadcast_to(value, (n,)).astype(float)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a)
    a.setflags(write=False)
    return a
