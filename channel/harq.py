"""Timing of a transfer under an MCS table: transport blocks, block errors and HARQ, slot by slot.

Slots of ``slot_s`` seconds follow one another from the transfer's start ``t0``;
slot k (start ``t0 + k slot_s``) belongs to the fading block containing its start.
Each transport block (TB) carries ``SE_m W slot_s`` bits (W: the link's bandwidth,
m: the MCS of the block in which the TB is first sent) and is sent in
consecutive slots until it is decoded or ``H`` transmissions have failed: the
j-th transmission fails with probability ``BLER_m(10 log10(j g_eff))`` (chase
combining adds the SINRs of the transmissions; the SINR is the one of the block
where the TB started, an error of at most one TB per fading block). A TB lost
after H transmissions is sent again as a new TB. The other HARQ processes keep
the link busy while one waits for its acknowledgement, so a retransmission costs
one slot of air time and no round-trip gap (8 parallel processes in NR, TS 38.214).

The transfer ends with the slot that delivers its last bit; its duration is a
whole number of slots. Errors come from the link's own stream (``rng``), in the
order the transfers happen. Overheads (DMRS, control) are not subtracted beyond
what the SINR thresholds embed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from channel.errors import TransferError
from channel.linkmodel import Mcs, bler

__all__ = ["HarqOutcome", "mcs_transfer"]

#: Fading blocks whose SINRs are fetched at once.
_BATCH_BLOCKS = 64
#: Refuse a transfer that delivered nothing over this many fading blocks in a row (a link below every MCS).
STALL_BLOCKS = 10_000


@dataclass(frozen=True)
class HarqOutcome:
    """Duration (s), fading blocks spanned, transmissions sent, TBs delivered, MCS of the first block."""

    duration_s: float
    n_blocks: int
    transmissions: int
    delivered_tbs: int
    first_mcs: int

    @property
    def retransmissions(self) -> int:
        """Transmissions beyond one per delivered TB (HARQ retransmissions and resent lost TBs)."""
        return self.transmissions - self.delivered_tbs


def mcs_transfer(model: Mcs, rng: np.random.Generator, bits: float, t0_s: float, *,
                 sinr_lin: Callable[[int, int], np.ndarray], bandwidth_hz: float,
                 block_index: Callable[[float], int], block_start_s: Callable[[int], float], static: bool,
                 max_blocks: int) -> HarqOutcome:
    """Send ``bits`` from ``t0_s`` (module docstring).

    Parameters
    ----------
    model : Mcs
    rng : numpy.random.Generator
        The link's block-error stream.
    bits : float
        > 0.
    sinr_lin : callable(first, stop) -> (stop - first, N) array
        SINR of the link's subchannels that carry power, per fading block.
    bandwidth_hz : float
        W, total bandwidth of those subchannels.
    block_index, block_start_s : callable
        The fading's block grid.
    static : bool
        The SINR is the same in every block.
    max_blocks : int
        Refuse a transfer that would span more fading blocks.
    """
    table = model.mcs
    se, h = table.spectral_efficiency, model.max_transmissions
    slot = model.slot_s
    b0 = block_index(t0_s)
    remaining, pos, sent, delivered = float(bits), 0, 0, 0
    mcs = eff = None
    first = first_mcs = b0
    b = stalled_since = b0
    while True:
        if b - stalled_since >= STALL_BLOCKS:
            raise TransferError(f"a transfer of {bits:g} bits delivered nothing over {STALL_BLOCKS} fading blocks "
                                f"from t = {block_start_s(stalled_since):.6g} s: the link's SINR stays under what "
                                f"the lowest MCS needs (check the power and the distance)")
        if b - b0 >= max_blocks:
            raise TransferError(f"a transfer of {bits:g} bits would span more than max_blocks(={max_blocks}) "
                                f"fading blocks: check the allocation, the power and the distance")
        if mcs is None or b >= first + mcs.size:
            first = b
            mcs, eff = model.block_mcs(sinr_lin(b, b + (1 if static else _BATCH_BLOCKS)))
            if b == b0:
                first_mcs = int(mcs[0])
        m, g_eff = int(mcs[b - first]), 10.0 ** (eff[b - first] / 10.0)
        k_end = math.inf if static else math.ceil((block_start_s(b + 1) - t0_s) / slot)
        tbs_bits = se[m] * bandwidth_hz * slot
        p_fail = bler(table, m, 10.0 * np.log10(g_eff * np.arange(1, h + 1)))
        if static and float(np.prod(p_fail)) > 1.0 - 1e-9:
            raise TransferError(
                f"a transfer of {bits:g} bits can never finish: at an effective SINR of {eff[0]:.1f} dB even "
                f"the lowest MCS fails all {h} HARQ transmissions (check the power and the distance)")
        while pos < k_end:
            need = math.ceil(remaining / tbs_bits - 1e-12)
            n = need if static else int(min(need, k_end - pos))
            fails = rng.random((n, h)) < p_fail
            ok = ~fails.all(axis=1)
            attempts = np.where(ok, np.argmax(~fails, axis=1) + 1, h)
            cum = np.cumsum(attempts)
            got = np.cumsum(ok)
            started = (cum - attempts) < (k_end - pos)
            done = np.flatnonzero(started & (got >= need))
            if done.size:
                i = int(done[0])
                pos, sent, delivered = pos + int(cum[i]), sent + int(cum[i]), delivered + int(got[i])
                duration_s = pos * slot
                b_end = block_index(t0_s + duration_s * (1.0 - 1e-12)) if not static else b0
                return HarqOutcome(duration_s, max(b_end - b0 + 1, b - b0 + 1), sent, delivered, first_mcs)
            k = int(np.count_nonzero(started))
            pos, sent, delivered = pos + int(cum[k - 1]), sent + int(cum[k - 1]), delivered + int(got[k - 1])
            remaining -= int(got[k - 1]) * tbs_bits
            if got[k - 1] > 0:
                stalled_since = b + 1
        b += 1
