"""The record of one transfer over a :class:`channel.RadioLink`: what the trace needs of it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Transfer"]


@dataclass(frozen=True)
class Transfer:
    """Outcome of sending ``bits`` over a :class:`RadioLink`.

    Attributes
    ----------
    duration_s : float
        Time from the start to the last bit, in s.
    bits : float
        Bits sent.
    mean_rate_bps : float
        ``bits / duration_s`` in bit/s (the link's rate at the start when ``bits == 0``).
    n_blocks : int
        Number of fading blocks the transfer overlaps (0 when ``bits == 0``).
    snr_db : float
        :meth:`RadioLink.snr_db` of the block in which the transfer starts, in dB.
    retransmissions : int
        Transport blocks sent again (rate model ``mcs``: HARQ retransmissions and
        blocks resent after the last one failed); 0 for the other models.
    energy_j : float
        Energy of the transmission, ``(sum of the link's power + circuit power) x duration``, J.
    distance_m : float
        Distance of the device to the base station at the start, m (NaN if unknown).
    mcs : int
        MCS index of the block in which the transfer starts (rate model ``mcs``; -1 otherwise).
    """

    duration_s: float
    bits: float
    mean_rate_bps: float
    n_blocks: int
    snr_db: float
    retransmissions: int = 0
    energy_j: float = 0.0
    distance_m: float = float("nan")
    mcs: int = -1
