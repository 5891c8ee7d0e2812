"""One client's large-scale gain over time: path loss, LoS state and shadowing along its trajectory.

On fading block b (start time ``t_b = b T``) the device is at distance ``d_b``
(:mod:`channel.mobility`) and

.. math:: \\beta_b = 10^{-(\\mathrm{PL}(\\max(d_b, r_0), L_b) + \\sigma(L_b) s_b)/10},

with the LoS state ``L_b = [\\Phi(g_b) < P_\\mathrm{LoS}(d_b)]`` and two standard
Gaussian processes along the path, ``g`` (LoS) and ``s`` (shadowing), each
first-order autoregressive in the distance moved (Gudmundson 1991, Electronics
Letters 27(23); TR 38.901 sec. 7.6.3.1 for the LoS state):

.. math:: s_{b+1} = a s_b + \\sqrt{1 - a^2} w_b, \\qquad a = e^{-v T / d_\\mathrm{corr}},

so ``E[s_b s_{b+k}] = exp(-k v T / d_corr)``. The starting values ``g_0``, ``s_0``
come from the caller (the client's LoS and shadowing draws; ``s_0`` may be
correlated with other clients', :func:`channel.shadowing.correlated_normals`).
The path loss is evaluated at ``max(d_b, r_0)``: a device passing closer than
the cell's minimum distance keeps the loss at ``r_0`` (the laws' validity ends there).

For a device that does not move, every block has the gain of block 0 and no
random number is drawn beyond the starting values. Innovations of a moving
device are drawn lazily in chunks of :attr:`LargeScale.CHUNK_BLOCKS` blocks, chunk
c from ``SeedSequence(seed, spawn_key=(c,))``, chained to the last block of
chunk c - 1, as in :class:`channel.BlockFading`.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
from scipy.special import ndtr

from channel import _check
from channel.mobility import Trajectory
from channel.pathloss_models import PathlossModel

__all__ = ["LargeScale", "LOS_MODES"]

#: How the LoS state is set: drawn from the model's P_LoS(d), or forced.
LOS_MODES = ("random", "los", "nlos")


class LargeScale:
    """Large-scale gain of one client on the fading blocks ``[b T, (b + 1) T)``.

    Parameters
    ----------
    model : PathlossModel
        The path-loss law (:mod:`channel.pathloss_models`).
    trajectory : Trajectory
        Where the device is over time.
    block_s : float
        Block length T, s (``inf`` only for a device that does not move).
    min_distance_m : float
        r0: the path loss is evaluated at no less than this distance, m.
    shadowing_z : float
        s_0, the standard-normal shadowing draw at the start.
    los_z : float
        g_0, the standard-normal draw of the LoS state at the start.
    los_mode : {"random", "los", "nlos"}
        Draw the state from P_LoS (``random``) or force it.
    rng : numpy.random.Generator, optional
        This client's track stream; one integer is drawn from it, only if the device moves.
    """

    CHUNK_BLOCKS = 256
    CACHED_CHUNKS = 2

    def __init__(self, *, model: PathlossModel, trajectory: Trajectory, block_s: float, min_distance_m: float,
                 shadowing_z: float, los_z: float = 0.0, los_mode: str = "random",
                 rng: np.random.Generator | None = None):
        if los_mode not in LOS_MODES:
            raise ValueError(f"los_mode(={los_mode!r}) must be one of {', '.join(LOS_MODES)}")
        self.model = model
        self.trajectory = trajectory
        self.block_s = float(_check.positive("block_s", block_s)) if math.isfinite(block_s) else math.inf
        self.min_distance_m = float(_check.non_negative("min_distance_m", min_distance_m))
        self.los_mode = los_mode
        self._z0 = np.array([float(los_z), float(shadowing_z)])
        if not self.is_static:
            if not math.isfinite(self.block_s):
                raise ValueError("block_s must be finite for a moving device")
            if rng is None:
                raise ValueError("rng is required for a moving device")
            self._seed = int(rng.integers(2**63))
            step_m = trajectory.speed_mps * self.block_s
            self._a = np.array([math.exp(-step_m / model.los_decorrelation_m), 0.0])
        self._last_of_chunk: list[np.ndarray] = []
        self._chunks: OrderedDict[int, tuple] = OrderedDict()
        self._static = None if not self.is_static else self._state(np.zeros(1), self._z0[None, :])

    @property
    def is_static(self) -> bool:
        """True if the gain is the same in every block (the device does not move)."""
        return self.trajectory.is_static

    def _state(self, t_s: np.ndarray, z: np.ndarray) -> tuple:
        """(distance_m, los, shadowing_db, gain_lin) at times ``t_s`` with standard normals ``z`` (n, 2)."""
        d = self.trajectory.distances_m(t_s)
        d_pl = np.maximum(d, self.min_distance_m) if self.min_distance_m > 0 else d
        if self.los_mode == "random":
            los = ndtr(z[:, 0]) < self.model.los_probability(d_pl)
        else:
            los = np.full(d.shape, self.los_mode == "los")
        shadow_db = self.model.shadowing_std_db(los) * z[:, 1]
        gain = np.power(10.0, -(self.model.pathloss_db(d_pl, los) + shadow_db) / 10.0)
        return d, los, shadow_db, gain

    def states(self, first: int, stop: int) -> tuple:
        """``(distance_m, los, shadowing_db, gain_lin)`` of blocks ``first <= b < stop``, each ``(stop - first,)``."""
        first = _check.count("first", first)
        stop = _check.count("stop", stop)
        if stop < first:
            raise ValueError(f"stop(={stop}) must be >= first(={first})")
        n = stop - first
        if self._static is not None:
            return tuple(np.broadcast_to(x, (n,)).copy() for x in self._static)
        size = self.CHUNK_BLOCKS
        parts = [self._chunk(c) for c in range(first // size, (stop - 1) // size + 1)] if n else []
        lo = first - (first // size) * size
        return tuple(np.concatenate([p[i] for p in parts])[lo:lo + n] if parts else np.zeros(0)
                     for i in range(4))

    def gains_lin(self, first: int, stop: int) -> np.ndarray:
        """Large-scale power gain beta of blocks ``first <= b < stop`` (linear), shape ``(stop - first,)``."""
        return self.states(first, stop)[3]

    def gain_lin(self, b: int) -> float:
        """Large-scale power gain of block ``b`` (linear)."""
        return float(self.gains_lin(b, b + 1)[0])

    def distance_m(self, t_s: float) -> float:
        """The device's horizontal distance to the base station at time ``t_s``, m."""
        return float(self.trajectory.distances_m(np.asarray(float(t_s))))

    def _chunk(self, c: int) -> tuple:
        if c in self._chunks:
            self._chunks.move_to_end(c)
            return self._chunks[c]
        for k in range(len(self._last_of_chunk), c):
            self._generate(k)
        return self._generate(c)

    def _generate(self, c: int) -> tuple:
        n = self.CHUNK_BLOCKS
        stream = np.random.Generator(np.random.PCG64(np.random.SeedSequence(self._seed, spawn_key=(c,))))
        w = stream.standard_normal((n, 2))
        blocks = np.arange(c * n, (c + 1) * n)
        # The shadowing's correlation may depend on the LoS state of the block (TR 38.901 Table 7.5-6),
        # so the recursion runs block by block; the LoS process's coefficient is constant.
        z = np.empty((n, 2))
        prev = self._z0 if c == 0 else self._last_of_chunk[c - 1]
        t_s = blocks * self.block_s
        d = self.trajectory.distances_m(t_s)
        d_pl = np.maximum(d, self.min_distance_m)
        p_los = self.model.los_probability(d_pl)
        step_m = self.trajectory.speed_mps * self.block_s
        a_los = self._a[0]
        for i in range(n):
            if c == 0 and i == 0:
                z[0] = self._z0
            else:
                g = a_los * prev[0] + math.sqrt(1.0 - a_los**2) * w[i, 0]
                los = (ndtr(g) < p_los[i]) if self.los_mode == "random" else self.los_mode == "los"
                a_sf = math.exp(-step_m / float(self.model.shadowing_decorrelation_m(los)))
                z[i] = (g, a_sf * prev[1] + math.sqrt(1.0 - a_sf**2) * w[i, 1])
            prev = z[i]
        state = self._state(t_s, z)
        if c == len(self._last_of_chunk):
            self._last_of_chunk.append(z[-1].copy())
        self._chunks[c] = state
        self._chunks.move_to_end(c)
        while len(self._chunks) > self.CACHED_CHUNKS:
            self._chunks.popitem(last=False)
        return state
