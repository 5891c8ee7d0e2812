"""Small-scale fading: Rayleigh block fading, Gauss-Markov from block to block.

On each subchannel n of a client the complex gain :math:`h_{n,b} \\sim \\mathcal{CN}(0, 1)`
is constant during block b (``block_s`` seconds) and evolves as a first-order
Gauss-Markov process,

.. math:: h_{n,b+1} = \\rho\\, h_{n,b} + \\sqrt{1 - \\rho^2}\\, w_{n,b},
          \\qquad w_{n,b} \\sim \\mathcal{CN}(0, 1) \\text{ i.i.d.},

independent across subchannels, with :math:`\\rho = J_0(2\\pi f_d T_c)` matching
Jakes' autocorrelation at a lag of one block (Clarke 1968; Jakes 1974; see
e.g. Rappaport, *Wireless Communications*, 2nd ed., sec. 5.4 and 5.7).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
from numpy.typing import ArrayLike

from channel import _check
from channel.doppler import SPEED_OF_LIGHT_MPS, coherence_time_s, doppler_hz, gauss_markov_rho

# The Doppler helpers live in channel.doppler and are re-exported here, next to
# the process whose rho they give.
__all__ = [
    "SPEED_OF_LIGHT_MPS",
    "doppler_hz",
    "coherence_time_s",
    "gauss_markov_rho",
    "rayleigh_gauss_markov",
    "BlockFading",
]


def rayleigh_gauss_markov(
    rng: np.random.Generator,
    n_blocks: int,
    n_subchannels: int,
    rho: float,
    *,
    h_prev: ArrayLike | None = None,
) -> np.ndarray:
    """Draw complex gains of a Rayleigh Gauss-Markov process, block by block.

    :math:`h_0 = w_0` (stationary start) or, given the previous block,
    :math:`h_0 = \\rho h_\\mathrm{prev} + \\sqrt{1-\\rho^2} w_0`; then
    :math:`h_b = \\rho h_{b-1} + \\sqrt{1-\\rho^2} w_b`, with
    :math:`w_b \\sim \\mathcal{CN}(0, I)`.

    Draws ``2 * n_blocks * n_subchannels`` standard normals, block after block
    (real then imaginary part of each subchannel), so two consecutive calls
    chained by ``h_prev`` give the same gains as one call for all the blocks.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random stream of this client's fading.
    n_blocks : int
        Number of blocks, >= 0.
    n_subchannels : int
        Number of subchannels, >= 0.
    rho : float
        Block-to-block correlation in [-1, 1] (1: constant, 0: i.i.d. blocks).
    h_prev : array_like of complex, optional
        Gains of the block before the first one, shape ``(n_subchannels,)``.

    Returns
    -------
    numpy.ndarray of complex
        Gains h, shape ``(n_blocks, n_subchannels)``; each entry is CN(0, 1)
        and :math:`E[h_b h_{b+1}^*] = \\rho`.
    """
    n_b = _check.count("n_blocks", n_blocks)
    n_sc = _check.count("n_subchannels", n_subchannels)
    if not -1.0 <= rho <= 1.0:
        raise ValueError(f"rho(={rho!r}) must be in [-1, 1]")
    z = rng.standard_normal((n_b, n_sc, 2))
    w = (z[..., 0] + 1j * z[..., 1]) / math.sqrt(2.0)
    if n_b == 0:
        return w
    innovation_std = math.sqrt(1.0 - rho * rho)
    x = innovation_std * w
    if h_prev is None:
        x[0] = w[0]
    else:
        h_prev = np.asarray(h_prev, dtype=complex)
        if h_prev.shape != (n_sc,):
            raise ValueError(f"h_prev has shape {h_prev.shape}, expected ({n_sc},)")
        x[0] += rho * h_prev
    # The AR(1) recursion h_b = rho h_{b-1} + x_b as an IIR filter along the blocks
    # (scipy.signal is imported here, not with the module: it is slow to import).
    from scipy.signal import lfilter

    return lfilter([1.0], [1.0, -rho], x, axis=0)


class BlockFading:
    """One client's small-scale fading on all its N subchannels, block by block.

    Block b covers :math:`[b T, (b+1) T)` with T = ``block_s``. Gains are
    generated lazily and deterministically with :func:`rayleigh_gauss_markov`:
    the value of block b never depends on which blocks were asked for before.
    The blocks are generated in chunks of :attr:`CHUNK_BLOCKS`, chunk c from
    its own stream ``SeedSequence(seed, spawn_key=(c,))`` chained to the last
    block of chunk c - 1; ``seed`` is the one draw this object makes from
    ``rng`` (none when ``enabled=False``). Only the gains at chunk boundaries
    are kept, plus the last :attr:`CACHED_CHUNKS` chunks, so a long run does
    not hold every block in memory; an evicted chunk is regenerated identically.

    Parameters
    ----------
    rng : numpy.random.Generator
        This client's fading stream.
    n_subchannels : int
        Number N of subchannels in the system (all of them, not only the client's).
    block_s : float
        Block length T in s, > 0 (typically the coherence time, 0.423 / f_d).
    rho : float
        Block-to-block correlation in [-1, 1], e.g. from :func:`gauss_markov_rho`.
    enabled : bool
        If False every power gain is exactly 1.0 (no small-scale fading) and
        no random number is drawn.
    """

    CHUNK_BLOCKS = 256
    CACHED_CHUNKS = 2

    def __init__(self, rng: np.random.Generator, n_subchannels: int, *, block_s: float, rho: float,
                 enabled: bool = True):
        self.n_subchannels = _check.count("n_subchannels", n_subchannels)
        self.block_s = float(_check.positive("block_s", block_s))
        if not -1.0 <= rho <= 1.0:
            raise ValueError(f"rho(={rho!r}) must be in [-1, 1]")
        self.rho = float(rho)
        self.enabled = bool(enabled)
        self._seed = int(rng.integers(2**63)) if self.enabled else None
        self._last_of_chunk: list[np.ndarray] = []  # h of the last block of chunks 0, 1, ...
        self._chunks: OrderedDict[int, np.ndarray] = OrderedDict()  # LRU cache of chunks

    @property
    def is_static(self) -> bool:
        """True if the gains are the same in every block (fading disabled or rho = 1)."""
        return not self.enabled or self.rho == 1.0

    def block_index(self, t_s: float) -> int:
        """Index of the block that contains time ``t_s`` (s, >= 0).

        :math:`b = \\lfloor t / T \\rfloor`, corrected against
        :meth:`block_start_s` so that a time equal to a block's start lies in
        that block even when ``t / T`` rounds below the integer.
        """
        t = float(_check.non_negative("t_s", t_s))
        b = math.floor(t / self.block_s)
        if self.block_start_s(b + 1) <= t:
            b += 1
        elif self.block_start_s(b) > t:
            b -= 1
        return b

    def block_start_s(self, b: int | np.ndarray) -> float | np.ndarray:
        """Start time of block ``b`` (an int or an int array) in s, :math:`b T`."""
        return b * self.block_s

    def power_gain(self, b: int) -> np.ndarray:
        """Small-scale power gains :math:`|h_{n,b}|^2` of block ``b``, shape ``(n_subchannels,)``."""
        return self.power_gains(b, b + 1)[0]

    def power_gains(self, first: int, stop: int) -> np.ndarray:
        """Power gains of blocks ``first <= b < stop``, shape ``(stop - first, n_subchannels)``.

        Each entry is Exp(1) distributed (mean 1, variance 1) when enabled, exactly 1.0 otherwise.
        """
        h = self.complex_gains(first, stop)
        return h.real**2 + h.imag**2

    def complex_gains(self, first: int, stop: int) -> np.ndarray:
        """Complex gains h of blocks ``first <= b < stop``, shape ``(stop - first, n_subchannels)``.

        Each entry is CN(0, 1) with :math:`E[h_b h_{b+1}^*] = \\rho` when enabled, 1 otherwise.
        """
        first = _check.count("first", first)
        stop = _check.count("stop", stop)
        if stop < first:
            raise ValueError(f"stop(={stop}) must be >= first(={first})")
        if not self.enabled or stop == first:
            return np.ones((stop - first, self.n_subchannels), dtype=complex)
        size = self.CHUNK_BLOCKS
        parts = [
            self._chunk(c)[max(first - c * size, 0):min(stop - c * size, size)]
            for c in range(first // size, (stop - 1) // size + 1)
        ]
        return np.concatenate(parts, axis=0)

    def _chunk(self, c: int) -> np.ndarray:
        if c in self._chunks:
            self._chunks.move_to_end(c)
            return self._chunks[c]
        # Chunk c needs the last block of chunk c - 1: generate the missing ones in order.
        for k in range(len(self._last_of_chunk), c):
            self._generate(k)
        return self._generate(c)

    def _draw(self, stream: np.random.Generator, prev: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """One chunk's complex gains (CHUNK_BLOCKS, N) and the state the next chunk starts from."""
        h = rayleigh_gauss_markov(stream, self.CHUNK_BLOCKS, self.n_subchannels, self.rho, h_prev=prev)
        return h, h[-1].copy()

    def _generate(self, c: int) -> np.ndarray:
        stream = np.random.Generator(np.random.PCG64(np.random.SeedSequence(self._seed, spawn_key=(c,))))
        prev = self._last_of_chunk[c - 1] if c > 0 else None
        h, last = self._draw(stream, prev)
        h.setflags(write=False)
        if c == len(self._last_of_chunk):
            self._last_of_chunk.append(last)
        self._chunks[c] = h
        self._chunks.move_to_end(c)
        while len(self._chunks) > self.CACHED_CHUNKS:
            self._chunks.popitem(last=False)
        return h
