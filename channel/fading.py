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
    "gauss_markov_filter",
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
    return gauss_markov_filter(z, rho, h_prev)


def gauss_markov_filter(z: np.ndarray, rho: float, h_prev: ArrayLike | None = None) -> np.ndarray:
    """The Gauss-Markov gains from standard normals ``z`` of shape ``(n_blocks, n, 2)`` (real, imaginary).

    :math:`w = (z_0 + j z_1)/\\sqrt 2`, :math:`h_0 = w_0` (or :math:`\\rho h_\\mathrm{prev} + \\sqrt{1-\\rho^2}
    w_0`), :math:`h_b = \\rho h_{b-1} + \\sqrt{1-\\rho^2} w_b`; returns h, shape ``(n_blocks, n)``.

    Computed as :math:`h_b = \\sum_{j \\le b} \\rho^{b-j} x_j + \\rho^{b+1} h_\\mathrm{prev}`: the innovations'
    part by a doubling scan along the blocks (log2(n_blocks) array operations, no scipy import on the
    simulation's path), the previous block's part added after, so a chunk of blocks comes out bit for bit
    the same whether it is drawn alone or among others (:func:`_scan`).
    """
    n_b, n_sc = z.shape[0], z.shape[1]
    w = (z[..., 0] + 1j * z[..., 1]) / math.sqrt(2.0)
    if n_b == 0:
        return w
    if h_prev is not None:
        h_prev = np.asarray(h_prev, dtype=complex)
        if h_prev.shape != (n_sc,):
            raise ValueError(f"h_prev has shape {h_prev.shape}, expected ({n_sc},)")
    x = math.sqrt(1.0 - rho * rho) * w
    if h_prev is None:
        x[0] = w[0]
    h = _scan(x[None], rho)[0]
    if h_prev is not None:
        h += _carry(n_b, rho) * h_prev
    return h


def _scan(x: np.ndarray, rho: float) -> np.ndarray:
    """In place along axis 1 of ``x`` (chunks, blocks, n): :math:`h_b = \\sum_{j \\le b} \\rho^{b-j} x_j` in
    each chunk; after the pass with shift s every h_b holds the terms j > b - 2s."""
    if rho == 0.0:
        return x
    shift, n_b = 1, x.shape[1]
    while shift < n_b:
        x[:, shift:] = x[:, shift:] + rho**shift * x[:, :-shift]  # the right side is evaluated before the write
        shift *= 2
    return x


def _carry(n_blocks: int, rho: float) -> np.ndarray:
    """:math:`\\rho^{b+1}` for b = 0 .. n_blocks - 1, shape (n_blocks, 1): the weight of the block before."""
    return (rho ** np.arange(1, n_blocks + 1, dtype=float))[:, None]


_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _mix64(x: np.ndarray) -> np.ndarray:
    """The SplitMix64 finalizer (Steele, Lea and Flood 2014), elementwise on uint64 (wrapping)."""
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def counter_normals(seed: int, columns: np.ndarray, first_block: int, n_blocks: int) -> np.ndarray:
    """Standard normals ``z[b, i, part]`` for blocks ``first_block + b`` of processes ``columns[i]``.

    Counter-based: each value is a function of (seed, process, block, part) alone, the
    SplitMix64 output for the process's key at counter ``2 (block + 1) + part``, two
    uniforms per block turned into a pair of normals by the Box-Muller transform. So any
    block of any process is drawn directly, all at once, and never depends on what else
    was drawn. Shape ``(n_blocks, len(columns), 2)``.
    """
    with np.errstate(over="ignore"):
        keys = _mix64(np.uint64(seed) ^ _mix64(np.asarray(columns, dtype=np.uint64) + np.uint64(1)))
        blocks = np.arange(first_block, first_block + n_blocks, dtype=np.uint64)
        ctr = (np.uint64(2) * (blocks + np.uint64(1)))[:, None, None] + np.arange(2, dtype=np.uint64)
        bits = _mix64(keys[None, :, None] + ctr * _GAMMA)
    u = (bits >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)  # [0, 1), 53 bits
    radius = np.sqrt(-2.0 * np.log1p(-u[..., 0]))  # log(1 - u): u = 0 is fine
    angle = 2.0 * np.pi * u[..., 1]
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=-1)


class BlockFading:
    """One client's small-scale fading on the N subchannels of the band, block by block.

    Block b covers :math:`[b T, (b+1) T)` with T = ``block_s``. Every subchannel
    fades as its own Gauss-Markov process (:func:`gauss_markov_filter`), drawn
    lazily, deterministically and only where asked: the gains of subchannel n
    in block b never depend on which blocks or which other subchannels were
    asked for before, so a client that holds 2 of 1,000 subchannels costs 2
    processes, not 1,000. The innovations are counter-based normals
    (:func:`counter_normals`: a function of the seed, the subchannel and the
    block); the blocks come in chunks of :attr:`CHUNK_BLOCKS`, each chained to
    the last block of the chunk before; ``seed`` is the one draw this object
    makes from ``rng`` (none when ``enabled=False``). Only the gains at chunk boundaries are kept, plus the
    last :attr:`CACHED_CHUNKS` chunks of the subchannels in use, so a long run
    does not hold every block in memory; an evicted chunk is regenerated
    identically.

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
        self._processes = _Processes(self._seed, self.rho, self.CHUNK_BLOCKS, self.CACHED_CHUNKS)
        self._all = np.arange(self.n_subchannels)

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

    def power_gain(self, b: int, subchannels: ArrayLike | None = None) -> np.ndarray:
        """Small-scale power gains :math:`|h_{n,b}|^2` of block ``b``, shape ``(n_subchannels,)`` or
        ``(len(subchannels),)``."""
        return self.power_gains(b, b + 1, subchannels)[0]

    def power_gains(self, first: int, stop: int, subchannels: ArrayLike | None = None) -> np.ndarray:
        """Power gains of blocks ``first <= b < stop``, shape ``(stop - first, n)`` with n the number of
        ``subchannels`` (default: all N, in order).

        Each entry is Exp(1) distributed (mean 1, variance 1) when enabled, exactly 1.0 otherwise.
        """
        h = self.complex_gains(first, stop, subchannels)
        return h.real**2 + h.imag**2

    def complex_gains(self, first: int, stop: int, subchannels: ArrayLike | None = None) -> np.ndarray:
        """Complex gains h of blocks ``first <= b < stop`` on ``subchannels`` (default: all N, in order),
        shape ``(stop - first, n)``.

        Each entry is CN(0, 1) with :math:`E[h_b h_{b+1}^*] = \\rho` when enabled, 1 otherwise.
        """
        first = _check.count("first", first)
        stop = _check.count("stop", stop)
        if stop < first:
            raise ValueError(f"stop(={stop}) must be >= first(={first})")
        cols = self._all if subchannels is None else np.asarray(subchannels, dtype=np.intp)
        if cols.size and (cols.min() < 0 or cols.max() >= self.n_subchannels):
            raise ValueError(f"subchannels must be indices in [0, {self.n_subchannels})")
        if not self.enabled or stop == first:
            return np.ones((stop - first, cols.size), dtype=complex)
        size = self.CHUNK_BLOCKS
        parts = [
            self._chunk(c, cols)[max(first - c * size, 0):min(stop - c * size, size)]
            for c in range(first // size, (stop - 1) // size + 1)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def _chunk(self, c: int, cols: np.ndarray) -> np.ndarray:
        """Chunk c's gains on subchannels ``cols``, shape (CHUNK_BLOCKS, len(cols))."""
        return self._processes.chunk(c, cols)


class _Processes:
    """Independent Gauss-Markov processes, drawn lazily per (process, chunk) from their own streams.

    Keeps, per process, the value of the last block of every chunk drawn so far
    (what the next chunk chains to), and an LRU cache of the last ``cached``
    chunks with the processes drawn in each.
    """

    def __init__(self, seed: int | None, rho: float, chunk_blocks: int, cached: int):
        self.seed, self.rho, self.size, self.cached = seed, rho, chunk_blocks, cached
        self.last: dict[int, list[complex]] = {}
        self.cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def chunk(self, c: int, cols: np.ndarray) -> np.ndarray:
        """Chunk c of processes ``cols``, shape (chunk_blocks, len(cols))."""
        hit = self.cache.get(c)
        if hit is not None and hit[0].size == cols.size and np.array_equal(hit[0], cols):
            return hit[1]  # the common case: the same subchannels as last time
        ids, h = hit or (np.empty(0, dtype=np.intp), np.empty((self.size, 0), dtype=complex))
        wanted = np.unique(cols)
        missing = wanted[~np.isin(wanted, ids)] if ids.size else wanted
        if missing.size:
            self._catch_up(missing, c)
            ids = np.concatenate([ids, missing])
            h = np.concatenate([h, self._draw(c, missing)], axis=1)
            order = np.argsort(ids, kind="stable")
            ids, h = ids[order], h[:, order]
            h.setflags(write=False)
        self.cache[c] = (ids, h)
        self.cache.move_to_end(c)
        while len(self.cache) > self.cached:
            self.cache.popitem(last=False)
        if ids.size == cols.size and np.array_equal(ids, cols):
            return h
        return h[:, np.searchsorted(ids, cols)]

    def _catch_up(self, cols: np.ndarray, c: int) -> None:
        """Draw chunks .. c-1 of every process in ``cols`` not drawn that far (their chain to chunk c),
        many chunks in one go (only their last blocks are kept)."""
        behind = [int(n) for n in cols if len(self.last.get(int(n), ())) < c]
        while behind:
            j = min(len(self.last.get(n, ())) for n in behind)
            group = np.array([n for n in behind if len(self.last.get(n, ())) == j], dtype=np.intp)
            h = self._chunks(j, min(c - j, 64), group)  # at most 64 chunks a draw: bounds a long catch-up's memory
            for i, n in enumerate(group.tolist()):
                self.last.setdefault(n, []).extend(h[:, -1, i].tolist())
            behind = [n for n in behind if len(self.last[n]) < c]

    def _draw(self, c: int, cols: np.ndarray) -> np.ndarray:
        """Chunk c of processes ``cols`` (each chained to its chunk c - 1), recording their last values."""
        h = self._chunks(c, 1, cols)[0]
        for i, n in enumerate(cols):
            chain = self.last.setdefault(int(n), [])
            if len(chain) == c:
                chain.append(complex(h[-1, i]))
        return h

    def _chunks(self, first: int, m: int, cols: np.ndarray) -> np.ndarray:
        """Chunks first .. first+m-1 of processes ``cols``, shape (m, chunk_blocks, len(cols)).

        Each chunk is scanned on its own and its chain term added after (:func:`gauss_markov_filter`), so a
        chunk's values do not depend on how many chunks were drawn with it.
        """
        z = counter_normals(self.seed, cols, first * self.size, m * self.size)
        w = (z[..., 0] + 1j * z[..., 1]) / math.sqrt(2.0)
        x = (math.sqrt(1.0 - self.rho * self.rho) * w).reshape(m, self.size, cols.size)
        if first == 0:
            x[0, 0] = w[0]  # the stationary start of chunk 0
        h = _scan(x, self.rho)
        carry = _carry(self.size, self.rho)
        prev = None if first == 0 else np.array([self.last[int(n)][first - 1] for n in cols])
        for i in range(m):
            if prev is not None:
                h[i] += carry * prev
            prev = h[i, -1]
        return h
