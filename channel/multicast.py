"""A multicast: one transmission over the whole downlink band that every receiving client must decode.

The base station sends the same bits once, over all downlink subchannels at once;
each client k sees them through its own channel, and the transmission can only
go as fast as its worst receiver (Shannon or capped Shannon),

.. math:: r_b = \\min_k \\sum_n B_n f(g_{k,n,b}),

integrated over the fading blocks as a unicast transfer is. Under the ``mcs``
rate model the MCS is chosen, and block errors drawn, for the receiver with the
lowest effective SINR in each block (the others decode what it decodes: an
approximation that ignores errors at the better receivers).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from channel import _check
from channel.errors import TransferError
from channel.harq import STALL_BLOCKS, mcs_transfer
from channel.link import RadioLink
from channel.transfer import Transfer

__all__ = ["MulticastLink"]


class MulticastLink:
    """The broadcast to ``links``: each client's link over the whole downlink band (same subchannels, powers).

    Parameters
    ----------
    links : sequence of RadioLink
        One per receiving client, all on the same subchannels with the same powers
        and fading block grid (block length); their rate model is used.
    error_rng : numpy.random.Generator, optional
        The multicast's block-error stream (rate model ``mcs``).
    """

    def __init__(self, links: Sequence[RadioLink], *, error_rng: np.random.Generator | None = None):
        if not links:
            raise ValueError("links must hold at least one receiver")
        self.links = list(links)
        first = self.links[0]
        for link in self.links[1:]:
            if (link.subchannels.tolist() != first.subchannels.tolist()
                    or link.fading.block_s != first.fading.block_s):
                raise ValueError("every receiver's link must use the same subchannels and fading blocks")
        self.rate_model = first.rate_model
        self.error_rng = error_rng
        self.power_w = first.power_w
        self.subchannels = first.subchannels

    @property
    def is_static(self) -> bool:
        return all(link.is_static for link in self.links)

    def _worst(self, first: int, stop: int, links: list[RadioLink]) -> np.ndarray:
        """SINRs (stop - first, n) of the worst receiver in each block (lowest error-free rate)."""
        sinr = np.stack([link.sinr_lin(first, stop) for link in links])  # (K, blocks, n)
        rates = np.stack([link._rates(first, stop).sum(axis=1) for link in links])  # (K, blocks)
        worst = np.argmin(rates, axis=0)
        return sinr[worst, np.arange(sinr.shape[1])]

    def rate_bps(self, block: int, receivers=None) -> float:
        """The multicast rate in ``block``: the worst receiver's (of ``receivers``, default all), bit/s."""
        links = self.links if receivers is None else [self.links[k] for k in receivers]
        return float(min(link.rate_bps(block) for link in links))

    def transfer(self, bits: float, t_start_s: float, *, receivers: Sequence[int] | None = None,
                 max_blocks: int = RadioLink.MAX_BLOCKS) -> Transfer:
        """Send ``bits`` from ``t_start_s`` to ``receivers`` (indices into the links; default all).

        The record's SNR is the worst receiver's; its energy the base station's, ``sum p x duration``.
        """
        d_bits = float(_check.non_negative("bits", bits))
        t0_s = float(_check.non_negative("t_start_s", t_start_s))
        links = self.links if receivers is None else [self.links[k] for k in receivers]
        if not links:
            raise ValueError("receivers must name at least one client")
        static = all(link.is_static for link in links)
        fading = links[0].fading
        b0 = fading.block_index(t0_s)
        snr0_db = min(link.snr_db(b0) for link in links)
        energy_w = float(self.power_w.sum())
        if d_bits == 0.0:
            return Transfer(0.0, 0.0, self.rate_bps(b0, receivers), 0, snr0_db)
        if self.rate_model is not None and self.rate_model.random:
            used = self.power_w > 0.0
            out = mcs_transfer(self.rate_model, self.error_rng, d_bits, t0_s,
                               sinr_lin=lambda first, stop: self._worst(first, stop, links)[:, used],
                               bandwidth_hz=float(self.links[0].bandwidth_hz[used].sum()),
                               block_index=fading.block_index, block_start_s=fading.block_start_s,
                               static=static, max_blocks=max_blocks)
            return Transfer(out.duration_s, d_bits, d_bits / out.duration_s, out.n_blocks, snr0_db,
                            retransmissions=out.retransmissions, energy_j=energy_w * out.duration_s, mcs=out.first_mcs)
        # Integrate the worst receiver's rate, block by block from the start.
        elapsed_s, left, b = 0.0, d_bits, b0
        t = t0_s
        while True:
            if b - b0 >= max_blocks:
                raise TransferError(f"a multicast of {d_bits:g} bits would span more than max_blocks(={max_blocks}) "
                                 f"fading blocks")
            rate = self.rate_bps(b, receivers)
            end_s = fading.block_start_s(b + 1) if not static else np.inf
            span_s = end_s - t
            if rate > 0 and left <= rate * span_s:
                elapsed_s += left / rate
                return Transfer(elapsed_s, d_bits, d_bits / elapsed_s, b - b0 + 1, snr0_db,
                                energy_j=energy_w * elapsed_s)
            if static or (left == d_bits and b - b0 >= STALL_BLOCKS):
                raise TransferError(f"a multicast of {d_bits:g} bits can never finish: the worst receiver's rate "
                                    f"stays 0 (SNR {snr0_db:.1f} dB)")
            left -= rate * span_s
            elapsed_s += span_s
            t, b = end_s, b + 1

