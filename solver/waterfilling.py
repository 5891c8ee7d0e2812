"""Water-filling over one client's subchannels, in closed form and vectorised.

A client with subchannels n (bandwidth ``B_n`` Hz, SNR per watt ``a_n = g_n / noise_n``)
gets the Shannon rate ``R(p) = sum_n B_n log2(1 + p_n a_n)``. Both problems below
are convex and share the same KKT solution (Boyd & Vandenberghe, *Convex
Optimization*, example 5.2, with bandwidth weights)::

    p_n = B_n (L - 1 / s_n)^+,      s_n = B_n a_n,

with one water level ``L`` (W/Hz) for all active subchannels ``{n : L s_n > 1}``:

- ``max_rate(power_w)``: maximise ``R(p)`` s.t. ``sum_n p_n <= P`` (water-filling);
- ``min_power(rate_bps)``: minimise ``sum_n p_n`` s.t. ``R(p) >= R`` (inverse
  water-filling, what power control needs for a target delay).

No bisection on ``L`` is needed: with the subchannels sorted by ``s_n`` the
active set is a prefix whose length follows from the values of ``P`` (or ``R``)
at the breakpoints ``L = 1 / s_j``, and ``L`` then has a closed form. Rows are
independent problems: shapes are ``(..., W)`` with ``snr_per_w == 0`` marking a
subchannel the row does not hold.
"""

from __future__ import annotations

import numpy as np


#: Rows wider than this use the O(Q log W) path of :meth:`WaterFilling.max_rate_delta`.
_WIDE = 12


class WaterFilling:
    """Sorted prefix sums of a batch of subchannel sets, for repeated solves.

    Parameters
    ----------
    snr_per_w : (..., W) float, 1/W
        ``g / noise`` of each subchannel of each row; 0 where the row does not
        hold the subchannel.
    bandwidth_hz : (W,) or (..., W) float, Hz
        Bandwidth of each subchannel.
    """

    def __init__(self, snr_per_w: np.ndarray, bandwidth_hz: np.ndarray):
        snr = np.asarray(snr_per_w, dtype=float)
        bandwidth = np.broadcast_to(np.asarray(bandwidth_hz, dtype=float), snr.shape)
        strength = bandwidth * snr
        self._order = np.argsort(-strength, axis=-1, kind="stable")
        s = _take(strength, self._order)
        held = s > 0
        b = np.where(held, _take(bandwidth, self._order), 0.0)
        safe = np.where(held, s, 1.0)  # no log or division of 0: no floating-point warning to silence
        log2_s = np.where(held, np.log2(safe), 0.0)
        inv_s = np.where(held, 1.0 / safe, 0.0)
        self._held, self._b, self._inv_s = held, b, inv_s
        # What max_rate_delta reads back as log2 s_n (from 1 / s_n, as it always has).
        self._log2_s_from_inv = np.where(held, -np.log2(np.where(held, inv_s, 1.0)), 0.0)
        self._count = held.sum(axis=-1)
        self._cum_b = np.cumsum(b, axis=-1)
        self._cum_b_log2_s = np.cumsum(b * log2_s, axis=-1)
        self._cum_b_inv_s = np.cumsum(b * inv_s, axis=-1)
        # Rate and power reached when the level sits at the breakpoint 1/s_j:
        # only the subchannels before j are active there.
        excl_b = self._cum_b - b
        rate_at = (self._cum_b_log2_s - b * log2_s) - log2_s * excl_b
        power_at = inv_s * excl_b - (self._cum_b_inv_s - b * inv_s)
        self._rate_break = np.where(held, rate_at, np.inf)
        self._power_break = np.where(held, power_at, np.inf)

    @property
    def has_channel(self) -> np.ndarray:
        """(...,) bool: whether each row holds at least one subchannel."""
        return self._held[..., 0]

    def _prefix(self, active: np.ndarray):
        idx = np.maximum(active - 1, 0)[..., None]
        return tuple(_take(a, idx)[..., 0] for a in (self._cum_b, self._cum_b_log2_s, self._cum_b_inv_s))

    def max_rate(self, power_w) -> tuple[np.ndarray, np.ndarray]:
        """Largest rate reachable with total power ``power_w``, and its water level.

        Parameters
        ----------
        power_w : (...,) float, W
            Power budget of each row.

        Returns
        -------
        rate_bps : (...,) float, bit/s
            ``sum_n B_n log2(L s_n)`` over the active prefix; 0 without power or
            subchannels.
        level : (...,) float, W/Hz
            ``L = (P + sum_active 1/a_n) / sum_active B_n``; 0 where nothing is active.
        """
        power = np.broadcast_to(np.asarray(power_w, dtype=float), self._held.shape[:-1])
        active = np.sum(self._power_break < power[..., None], axis=-1)
        cum_b, cum_b_log2_s, cum_b_inv_s = self._prefix(active)
        ok = active > 0
        safe_b = np.where(ok, cum_b, 1.0)
        level = np.where(ok, (power + cum_b_inv_s) / safe_b, 0.0)
        with np.errstate(divide="ignore"):
            rate = np.where(ok, cum_b_log2_s + cum_b * np.log2(np.where(ok, level, 1.0)), 0.0)
        return rate, level

    def min_power(self, rate_bps, *, with_bandwidth: bool = False):
        """Least total power that reaches ``rate_bps``, and its water level.

        Parameters
        ----------
        rate_bps : (...,) float, bit/s
            Required rate of each row (``inf`` allowed: the power is then ``inf``).

        Returns
        -------
        power_w : (...,) float, W
            ``L sum_active B_n - sum_active 1/a_n``; 0 for a zero rate, ``inf``
            for a positive rate on a row without subchannels.
        level : (...,) float, W/Hz
            ``L = 2^((R - sum_active B_n log2 s_n) / sum_active B_n)``.
        active_bandwidth_hz : (...,) float, Hz
            Only with ``with_bandwidth``: ``sum_active B_n``, so that
            ``dL/dR = L ln 2 / sum_active B_n`` (and ``dP/dR = L ln 2``).
        """
        rate = np.broadcast_to(np.asarray(rate_bps, dtype=float), self._held.shape[:-1])
        active = np.sum(self._rate_break < rate[..., None], axis=-1)
        cum_b, cum_b_log2_s, cum_b_inv_s = self._prefix(active)
        ok = active > 0
        safe_b = np.where(ok, cum_b, 1.0)
        with np.errstate(over="ignore", invalid="ignore"):
            level = np.where(ok, np.exp2((rate - cum_b_log2_s) / safe_b), 0.0)
            power = np.where(ok, level * cum_b - cum_b_inv_s, 0.0)
        power = np.where((rate > 0) & ~self.has_channel, np.inf, np.maximum(power, 0.0))
        return (power, level, np.where(ok, cum_b, 0.0)) if with_bandwidth else (power, level)

    def max_rate_plus(self, power_w: float, snr_per_w, bandwidth_hz) -> np.ndarray:
        """Largest rate of this one-row set plus one extra subchannel, for each of Q extras.

        :meth:`max_rate_delta` with nothing removed: O(Q W), no sort, for the
        candidates of local search. ``snr_per_w``, ``bandwidth_hz``: (Q,).
        """
        if self._held.ndim != 2 or self._held.shape[0] != 1:
            raise ValueError(f"max_rate_plus: expected a one-row WaterFilling (got shape {self._held.shape})")
        extra = np.asarray(snr_per_w, dtype=float)
        return self.max_rate_delta(np.zeros(extra.size, dtype=np.int64), np.full(extra.size, float(power_w)),
                                   np.full(extra.size, -1), extra, np.broadcast_to(bandwidth_hz, extra.shape))

    def max_rate_delta(self, rows, power_w, removed, added_snr_per_w, added_bandwidth_hz) -> np.ndarray:
        """Largest rate of row ``rows[q]`` without one subchannel and with one more.

        The same shift of the breakpoints as :meth:`max_rate_plus`, for many rows
        at once: removing subchannel r subtracts ``B_r (1/s_j - 1/s_r)^+``, adding
        c adds ``B_c (1/s_j - 1/s_c)^+``. O(Q W), no sort; only as wide as the widest
        row involved, and O(Q log W) by bisection over prefix sums past ``_WIDE``
        subchannels (a cell-edge client holding 30+).

        Parameters
        ----------
        rows : (Q,) int
            Row of this (K, W) WaterFilling each candidate modifies.
        power_w : (Q,) float, W
        removed : (Q,) int
            Sorted position (0 = strongest) in the row of the subchannel removed, -1 for none.
        added_snr_per_w, added_bandwidth_hz : (Q,) float
            The subchannel added (SNR 0 for none).

        Returns
        -------
        rate_bps : (Q,) float, bit/s
        """
        rows, removed = np.asarray(rows), np.asarray(removed)
        power = np.asarray(power_w, dtype=float)
        # Each row's subchannels are a prefix of its sorted order: only the widest
        # row involved matters (a small giver need not pay for a large receiver).
        width = int(max(self._count[rows].max(initial=0), removed.max(initial=-1) + 1, 1))
        width = min(width, self._held.shape[-1])
        if width > _WIDE:
            return self._max_rate_delta_wide(rows, power, removed, added_snr_per_w, added_bandwidth_hz)
        held, inv_s, b = self._held[rows, :width], self._inv_s[rows, :width], self._b[rows, :width]
        power_break = self._power_break[rows, :width]
        keep = held & (np.arange(width)[None, :] != removed[:, None])
        gone = (removed >= 0) & (width > 0)
        at = np.clip(removed, 0, max(width - 1, 0))[:, None]
        inv_r = _take(inv_s, at)[:, 0] if width else np.zeros(rows.size)
        b_r = np.where(gone, _take(b, at)[:, 0] if width else 0.0, 0.0)
        b_c = np.asarray(added_bandwidth_hz, dtype=float)
        s_c = b_c * np.asarray(added_snr_per_w, dtype=float)
        usable = s_c > 0
        inv_c = np.where(usable, 1.0 / np.where(usable, s_c, 1.0), np.inf)
        with np.errstate(invalid="ignore"):
            shift = (np.where(usable[:, None], b_c[:, None] * np.maximum(inv_s - inv_c[:, None], 0.0), 0.0)
                     - b_r[:, None] * np.maximum(inv_s - inv_r[:, None], 0.0))
            active = keep & (power_break + shift < power[:, None])
            own_break = np.sum(np.where(keep, b * np.maximum(inv_c[:, None] - inv_s, 0.0), 0.0), axis=1)
        extra = usable & (own_break < power)
        log2_s = self._log2_s_from_inv[rows, :width]
        cum_b = np.sum(np.where(active, b, 0.0), axis=1) + np.where(extra, b_c, 0.0)
        cum_b_inv_s = np.sum(np.where(active, b * inv_s, 0.0), axis=1) + np.where(extra, b_c * np.where(extra, inv_c, 0.0), 0.0)
        with np.errstate(divide="ignore"):
            cum_b_log2_s = (np.sum(np.where(active, b * log2_s, 0.0), axis=1)
                            + np.where(extra, b_c * np.log2(np.where(extra, s_c, 1.0)), 0.0))
        ok = (cum_b > 0) & (power > 0)
        level = (power + cum_b_inv_s) / np.where(ok, cum_b, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(ok, cum_b_log2_s + cum_b * np.log2(np.where(ok, level, 1.0)), 0.0)

    def _max_rate_delta_wide(self, rows, power, removed, added_snr_per_w, added_bandwidth_hz) -> np.ndarray:
        """:meth:`max_rate_delta` in O(Q log W) for rows holding many subchannels.

        The shifted breakpoint ``f(j) = power_break_j + B_c (1/s_j - 1/s_c)^+ - B_r
        (1/s_j - 1/s_r)^+`` is non-decreasing in the sorted position j, so the
        active prefix is found by bisection, and the added subchannel's own
        breakpoint and every sum come from the prefix sums.
        """
        count = self._count[rows]
        last = max(self._held.shape[-1] - 1, 0)
        gone = removed >= 0
        at = np.maximum(removed, 0)
        inv_r = np.where(gone, self._inv_s[rows, at], np.inf)
        b_r = np.where(gone, self._b[rows, at], 0.0)
        log2_s_r = np.where(gone, -np.log2(np.where(gone, inv_r, 1.0)), 0.0)
        b_c = np.asarray(added_bandwidth_hz, dtype=float)
        s_c = b_c * np.asarray(added_snr_per_w, dtype=float)
        usable = s_c > 0
        inv_c = np.where(usable, 1.0 / np.where(usable, s_c, 1.0), np.inf)

        def first_not(condition):
            """Least j in [0, count] with ``condition(j)`` false (true on a prefix)."""
            lo, hi = np.zeros(rows.size, dtype=np.int64), count.astype(np.int64)
            while np.any(lo < hi):
                mid = (lo + hi) // 2
                go = (lo < hi) & condition(np.minimum(mid, last))
                lo, hi = np.where(go, mid + 1, lo), np.where((lo < hi) & ~go, mid, hi)
            return lo

        def shifted_break(j):
            inv_j = self._inv_s[rows, j]
            return (self._power_break[rows, j] + b_c * np.maximum(inv_j - inv_c, 0.0)
                    - b_r * np.maximum(inv_j - inv_r, 0.0))

        def prefix(cum, m):
            return np.where(m > 0, cum[rows, np.maximum(m - 1, 0)], 0.0)

        m = first_not(lambda j: shifted_break(j) < power)
        stronger = first_not(lambda j: self._inv_s[rows, j] < inv_c)  # held subchannels above c
        r_in = gone & (removed < stronger)
        finite_c, finite_r = np.where(usable, inv_c, 0.0), np.where(gone, inv_r, 0.0)
        own_break = (finite_c * prefix(self._cum_b, stronger) - prefix(self._cum_b_inv_s, stronger)
                     - np.where(r_in, b_r * (finite_c - finite_r), 0.0))
        extra = usable & (own_break < power)
        r_active = gone & (removed < m)
        cum_b = prefix(self._cum_b, m) - np.where(r_active, b_r, 0.0) + np.where(extra, b_c, 0.0)
        cum_b_inv_s = (prefix(self._cum_b_inv_s, m) - np.where(r_active, b_r * finite_r, 0.0)
                       + np.where(extra, b_c * finite_c, 0.0))
        cum_b_log2_s = (prefix(self._cum_b_log2_s, m) - np.where(r_active, b_r * log2_s_r, 0.0)
                        + np.where(extra, b_c * np.log2(np.where(extra, s_c, 1.0)), 0.0))
        ok = (cum_b > 0) & (power > 0)
        level = (power + cum_b_inv_s) / np.where(ok, cum_b, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(ok, cum_b_log2_s + cum_b * np.log2(np.where(ok, level, 1.0)), 0.0)

    def sorted_position(self) -> np.ndarray:
        """(..., W) int: position of each original column in its row's sorted order."""
        position = np.empty_like(self._order)
        np.put_along_axis(position, self._order, np.arange(self._order.shape[-1]), axis=-1)
        return position

    def allocation(self, level) -> np.ndarray:
        """Per-subchannel power ``B_n (L - 1/s_n)^+`` for water levels ``level``.

        Parameters
        ----------
        level : (...,) float, W/Hz
            A level returned by :meth:`max_rate` or :meth:`min_power`.

        Returns
        -------
        power_w : (..., W) float, W
            In the caller's subchannel order; 0 on subchannels a row does not hold.
        """
        level = np.broadcast_to(np.asarray(level, dtype=float), self._held.shape[:-1])
        with np.errstate(invalid="ignore"):
            sorted_power = np.where(self._held, self._b * np.maximum(level[..., None] - self._inv_s, 0.0), 0.0)
        power = np.empty_like(sorted_power)
        np.put_along_axis(power, self._order, sorted_power, axis=-1)
        return power


def _take(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``np.take_along_axis(values, index, axis=-1)`` (``values`` broadcast to ``index``'s leading
    shape), by plain indexing: the same gather, without its per-call set-up (it runs thousands of
    times per solve)."""
    if index.ndim == 1:
        return values[index]
    if index.size == 0:
        return np.take_along_axis(np.broadcast_to(values, index.shape[:-1] + values.shape[-1:]), index, axis=-1)
    lead = index.shape[:-1]
    flat_index = index.reshape(-1, index.shape[-1])
    flat_values = np.broadcast_to(values, lead + values.shape[-1:]).reshape(-1, values.shape[-1])
    rows = np.arange(flat_index.shape[0])[:, None]
    return flat_values[rows, flat_index].reshape(index.shape)


def water_filling(power_w, snr_per_w, bandwidth_hz) -> np.ndarray:
    """Per-subchannel power maximising the Shannon rate under a total power budget.

    ``p_n = B_n (L - 1/(B_n a_n))^+`` with ``sum_n p_n = P`` (module docstring).
    Shapes: ``power_w (...,)``, ``snr_per_w (..., W)``, ``bandwidth_hz (W,)``; returns
    ``(..., W)`` watts.
    """
    solver = WaterFilling(snr_per_w, bandwidth_hz)
    return solver.allocation(solver.max_rate(power_w)[1])


def inverse_water_filling(rate_bps, snr_per_w, bandwidth_hz) -> np.ndarray:
    """Per-subchannel power reaching ``rate_bps`` with the least total power.

    Same water-filling form as :func:`water_filling`, with the level set by the
    rate. Shapes: ``rate_bps (...,)``, ``snr_per_w (..., W)``, ``bandwidth_hz (W,)``;
    returns ``(..., W)`` watts.
    """
    solver = WaterFilling(snr_per_w, bandwidth_hz)
    return solver.allocation(solver.min_power(rate_bps)[1])


def shannon_rate(power_w, snr_per_w, bandwidth_hz) -> np.ndarray:
    """``sum_n B_n log2(1 + p_n a_n)`` over the last axis, bit/s."""
    return np.sum(np.asarray(bandwidth_hz) * np.log2(1.0 + np.asarray(power_w) * np.asarray(snr_per_w)), axis=-1)
