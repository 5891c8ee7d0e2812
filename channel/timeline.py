"""A link's rate block by block with its running total of bits: where a transfer ends, in O(log blocks).

:class:`LinkTimeline` keeps, for a window of fading blocks, the rate of each
block (the link's error-free rate, :meth:`channel.RadioLink.rates_bps` summed),
the SNR the trace reports for a transfer starting in it
(:meth:`channel.RadioLink.snr_db`) and the bits the link carries before each
block's start. A transfer of D bits from :math:`t_0` in block :math:`b_0` ends
where the running total reaches the bits at :math:`t_0` plus D: the rest of
block :math:`b_0` at its rate, whole blocks, part of the last. This is
:meth:`channel.RadioLink.transfer`'s integral, located by a binary search
instead of a scan (the same durations to rounding, about 1e-12 relative), for a
simulation that sends many transfers over the same links (the vectorised replay
of :mod:`cosim.fastreplay`). Links whose rate is random per transfer (the
``mcs`` rate model's block errors) are refused.
"""

from __future__ import annotations

import bisect

import numpy as np

from channel.errors import TransferError
from channel.units import lin_to_db

__all__ = ["LinkTimeline"]


class LinkTimeline:
    """Rates, SNRs and running bits of one :class:`channel.RadioLink`, block by block, extended lazily.

    Parameters
    ----------
    link : channel.RadioLink
        A link with a deterministic rate (no per-transfer block errors).
    start_s : float
        No transfer starts before this time (the window starts in its block).
    chunk_blocks : int
        Blocks added at a time.
    """

    def __init__(self, link, start_s: float = 0.0, chunk_blocks: int = 256):
        if link.rate_model is not None and link.rate_model.random:
            raise ValueError(f"LinkTimeline needs a deterministic rate (got the {link.rate_model.name!r} model)")
        self.link = link
        self.fading = link.fading
        self.chunk = int(chunk_blocks)
        self.static = link.is_static
        self.power_w = float(link.power_w.sum()) + link.circuit_power_w
        self._used = link.power_w > 0.0
        self._base = link.fading.block_index(start_s)  # block index of the window's first block
        self._rates: list[float] = []  # bit/s of blocks base, base + 1, ...
        self._snr_db: list[float] = []
        self._cum: list[float] = [0.0]  # bits over the window's blocks before block base + j

    def _extend(self) -> None:
        first = self._base + len(self._rates)
        stop = first + self.chunk
        sinr = self.link.sinr_lin(first, stop)
        rates = self.link.rates_from_sinr(sinr).sum(axis=1)
        if np.any(self._used):
            snr = lin_to_db(sinr[:, self._used]).mean(axis=1)
        else:
            snr = np.full(stop - first, -np.inf)
        lengths = np.diff(self.fading.block_start_s(np.arange(first, stop + 1)))
        cum = self._cum[-1] + np.cumsum(rates * lengths)
        self._rates.extend(rates.tolist())
        self._snr_db.extend(snr.tolist())
        self._cum.extend(cum.tolist())

    def forget_before(self, t_s: float) -> None:
        """Drop the blocks that end before ``t_s`` (no later transfer starts there)."""
        if self.static:
            return
        b = self.fading.block_index(t_s)
        j = b - self._base
        if j <= 2 * self.chunk:
            return
        drop = j - self.chunk
        if drop >= len(self._rates):  # the window lies wholly before t_s: start afresh at t_s
            self._base, self._rates, self._snr_db, self._cum = b, [], [], [0.0]
            return
        offset = self._cum[drop]
        self._rates = self._rates[drop:]
        self._snr_db = self._snr_db[drop:]
        self._cum = [c - offset for c in self._cum[drop:]]
        self._base += drop

    def _at(self, b: int) -> int:
        """Index of block ``b`` in the window, extended to hold it (a block far past the window starts a new one)."""
        j = b - self._base
        if j < 0:
            raise ValueError(f"block {b} is before the timeline's window (from block {self._base})")
        if j > len(self._rates) + self.chunk:
            self._base, self._rates, self._snr_db, self._cum = b, [], [], [0.0]
            j = 0
        while j >= len(self._rates):
            self._extend()
        return j

    def snr_db(self, t_s: float) -> float:
        """SNR (dB) the trace reports for a transfer that starts at ``t_s``."""
        if self.static:
            return self._static()[1]
        return self._snr_db[self._at(self.fading.block_index(t_s))]

    def rate_bps(self, t_s: float) -> float:
        """The link's rate in the block holding ``t_s``, bit/s."""
        if self.static:
            return self._static()[0]
        return self._rates[self._at(self.fading.block_index(t_s))]

    def _static(self) -> tuple[float, float]:
        """Rate and SNR of a link that is the same in every block (computed once, on its first block)."""
        if not self._rates:
            sinr = self.link.sinr_lin(self._base, self._base + 1)
            self._rates = [float(self.link.rates_from_sinr(sinr).sum())]
            self._snr_db = [float(lin_to_db(sinr[0, self._used]).mean()) if np.any(self._used) else -np.inf]
        return self._rates[0], self._snr_db[0]

    def duration_s(self, bits: float, t_start_s: float) -> float:
        """How long sending ``bits`` from ``t_start_s`` takes, s (as :meth:`channel.RadioLink.transfer`)."""
        if bits == 0.0:
            return 0.0
        if self.static:
            r0 = self._static()[0]
            if not r0 > 0.0:
                raise TransferError(f"a transfer of {bits:g} bits can never finish: the link's rate is 0")
            return bits / r0
        fading = self.fading
        b0 = fading.block_index(t_start_s)
        j0 = self._at(b0)
        r0 = self._rates[j0]
        head_s = fading.block_start_s(b0 + 1) - t_start_s
        if bits <= r0 * head_s:
            return bits / r0
        target = self._cum[j0 + 1] + (bits - r0 * head_s)
        while self._cum[-1] < target:
            if len(self._rates) - j0 > 10_000_000:
                raise TransferError(f"a transfer of {bits:g} bits would span more than 10,000,000 fading blocks")
            self._extend()
        k = bisect.bisect_left(self._cum, target)  # first running total >= target: the transfer ends in block k - 1
        last = k - 1
        tail_s = (target - self._cum[last]) / self._rates[last]
        return (fading.block_start_s(self._base + last) - t_start_s) + tail_s
