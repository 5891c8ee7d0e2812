"""Which subchannels each client holds, and the exchanges local search tries.

An exchange re-partitions the subchannels of two clients: every split of their
union when it is small (moves, swaps, trading whole sets, two for one ...), else
a *move* of one subchannel to the receiver (the giver keeps at least one) or a
*swap* of one for one. Exchanges are enumerated as padded index rows so the two
clients' new water-filling problems are solved in one vectorised batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from solver.waterfilling import WaterFilling


@dataclass(frozen=True, eq=False)
class Exchanges:
    """A batch of Q candidate re-partitions between two clients.

    Moves and swaps are stored by the subchannels that change hands only: the
    receiver's set can be large (a cell-edge client holding 30+ subchannels), and
    scoring them needs no row (:meth:`WaterFilling.max_rate_delta`), so the padded
    rows are built only when asked for.

    Attributes
    ----------
    receiver, giver : (Q,) int
        The two clients involved (the receiver is the one the search serves).
    gained, returned : (Q,) int
        For a move or swap, the subchannel the receiver gains and the one it gives
        back (-1 for a move); both -1 for a general split.
    split_receiver_rows, split_giver_rows : (S, W) int
        Each client's subchannels after each general split (the rows with
        ``gained < 0``, in order), padded with -1.
    table : (K, L) int
        Every client's subchannels before the exchanges (:meth:`ChannelSet.table`).
    """

    receiver: np.ndarray
    giver: np.ndarray
    gained: np.ndarray
    returned: np.ndarray
    split_receiver_rows: np.ndarray
    split_giver_rows: np.ndarray
    table: np.ndarray

    @property
    def size(self) -> int:
        return self.receiver.size

    @cached_property
    def receiver_rows(self) -> np.ndarray:
        """(Q, W) int: the receiver's subchannels after each exchange, padded with -1."""
        return self._rows(self.receiver, self.split_receiver_rows, add=self.gained, drop=self.returned)

    @cached_property
    def giver_rows(self) -> np.ndarray:
        """(Q, W) int: the giver's subchannels after each exchange, padded with -1."""
        return self._rows(self.giver, self.split_giver_rows, add=self.returned, drop=self.gained)

    def _rows(self, clients, split_rows, *, add, drop) -> np.ndarray:
        split = self.gained < 0
        width = max(self.table.shape[1] + 1, split_rows.shape[1])
        rows = np.full((self.size, width), -1)
        rows[split, :split_rows.shape[1]] = split_rows
        held = self.table[clients[~split]]
        kept = np.where(held == drop[~split, None], -1, held)  # the one given away leaves a hole
        exchanged = np.flatnonzero(~split)
        rows[exchanged, :held.shape[1]] = kept
        rows[exchanged, np.sum(held >= 0, axis=1)] = add[~split]  # after its own; -1 when none comes
        return rows

    def split_position(self, q: int) -> int:
        """Row of exchange ``q`` (a general split) in the ``split_*_rows``."""
        return int(np.count_nonzero(self.gained[:q] < 0))


def _splits(width: int) -> np.ndarray:
    """(2^width - 2, width) bool: every split of ``width`` items into two non-empty parts."""
    codes = np.arange(1, 2 ** width - 1)
    return (codes[:, None] >> np.arange(width)) & 1 == 1


def _trim(rows: np.ndarray) -> np.ndarray:
    """Drop the trailing columns that hold no subchannel in any row."""
    used = np.flatnonzero(np.any(rows >= 0, axis=0))
    return rows[:, :used[-1] + 1] if used.size else rows[:, :1]


class ChannelSet:
    """The owner of each subchannel of one set (main or federated), mutable.

    Parameters
    ----------
    snr_per_w : (K, W) float, 1/W
    bandwidth_hz : (W,) float, Hz
    owner : (W,) int, optional
        Initial owners, -1 for free (default: all free).
    """

    def __init__(self, snr_per_w: np.ndarray, bandwidth_hz: np.ndarray, owner=None):
        self.snr, self.bandwidth = snr_per_w, bandwidth_hz
        width = snr_per_w.shape[1]
        self.owner = np.full(width, -1, dtype=np.int64) if owner is None else np.array(owner, dtype=np.int64)

    @property
    def num_clients(self) -> int:
        return self.snr.shape[0]

    def channels(self, k: int) -> np.ndarray:
        """Subchannels held by client k."""
        return np.flatnonzero(self.owner == k)

    def table(self) -> np.ndarray:
        """(K, L) every client's subchannels, padded with -1."""
        k = self.num_clients
        held = np.flatnonzero(self.owner >= 0)
        by_owner = held[np.argsort(self.owner[held], kind="stable")]
        counts = np.bincount(self.owner[held], minlength=k)
        table = np.full((k, max(1, int(counts.max(initial=0)))), -1)
        own = self.owner[by_owner]
        table[own, np.arange(by_owner.size) - (np.cumsum(counts) - counts)[own]] = by_owner
        return table

    def water_filling(self, clients: np.ndarray, rows: np.ndarray) -> WaterFilling:
        """Water-filling of client ``clients[q]`` over the subchannels ``rows[q]`` (-1 = none)."""
        safe = np.maximum(rows, 0)
        snr = np.where(rows >= 0, self.snr[np.asarray(clients)[:, None], safe], 0.0)
        return WaterFilling(snr, self.bandwidth[safe])

    def current(self) -> WaterFilling:
        """Water-filling of every client over its current subchannels (K rows)."""
        k = self.num_clients
        return WaterFilling(np.where(self.owner[None, :] == np.arange(k)[:, None], self.snr, 0.0), self.bandwidth)

    def rate_of(self, k: int, budget_w: float) -> float:
        """Rate of client k at ``budget_w`` over its current subchannels (one row of
        :meth:`current`, without solving the other clients)."""
        held = self.channels(k)
        return float(WaterFilling(self.snr[k, held][None, :], self.bandwidth[held]).max_rate(budget_w)[0][0])

    def rate_plus(self, k: int, extra: np.ndarray, budget_w: float) -> np.ndarray:
        """(Q,) rate of client k at ``budget_w`` holding its subchannels plus each ``extra[q]``."""
        held = self.channels(k)
        base = WaterFilling(self.snr[k, held][None, :], self.bandwidth[held])
        return base.max_rate_plus(budget_w, self.snr[k, extra], self.bandwidth[extra])

    def exchanges(self, receivers, *, max_union: int = 6, max_split_rows: int = 2048,
                  max_swap_out: int = 2) -> Exchanges:
        """:meth:`_exchanges`, remembered for the last few ownerships (the search asks again for the
        same bottleneck when its best exchange finds nothing and a chain starts from there)."""
        key = (self.owner.tobytes(), tuple(np.atleast_1d(receivers).tolist()), max_union, max_split_rows,
               max_swap_out)
        return _remember(self, "_exchanges_memo", key, lambda: self._exchanges(
            receivers, max_union=max_union, max_split_rows=max_split_rows, max_swap_out=max_swap_out))

    def _exchanges(self, receivers, *, max_union: int, max_split_rows: int, max_swap_out: int) -> Exchanges:
        """Every re-partition between each client of ``receivers`` and each other client.

        For a pair holding at most ``max_union`` subchannels together, every split
        of their union into two non-empty parts (this covers moves, swaps and
        trading whole sets; the bound drops, down to 3, while one receiver's splits
        would exceed ``max_split_rows`` rows); for a larger pair, the moves of one subchannel to the
        receiver (the giver keeps one) and the swaps of one for one, the receiver
        giving one of its ``max_swap_out`` weakest subchannels (``B_n g_{k,n}/noise_n``;
        this keeps a step linear in N when one client holds many). A pair of two
        receivers is listed once. Pairs are batched by the giver's set size.
        """
        table = self.table()
        counts = np.sum(table >= 0, axis=1)
        listed = np.zeros(self.num_clients, dtype=bool)
        parts = []
        for k in np.atleast_1d(receivers):
            mine = table[k, :counts[k]]
            weakest = mine[np.argsort(self.bandwidth[mine] * self.snr[k, mine], kind="stable")[:max_swap_out]]
            others = np.flatnonzero(~listed & (np.arange(self.num_clients) != k))
            union_sizes = counts[others] + mine.size
            bound = max_union
            while bound > 3 and np.sum(np.where(union_sizes <= bound, 2.0 ** union_sizes - 2, 0)) > max_split_rows:
                bound -= 1
            for size in np.unique(counts[others]):
                givers = others[counts[others] == size]
                theirs = table[givers, :size]
                if mine.size + size <= bound:
                    rows = self._splits_of(mine, theirs)
                else:
                    rows = (None, None) + self._moves_and_swaps(theirs, weakest)
                parts.append((k, np.tile(givers, rows[2].size // givers.size)) + rows)
            listed[k] = True
        cat = lambda i: np.concatenate([p[i] for p in parts]) if parts else np.zeros(0, dtype=np.int64)  # noqa: E731
        splits = [p for p in parts if p[2] is not None]
        width = max([max(p[2].shape[1], p[3].shape[1]) for p in splits], default=1)
        n_split = sum(p[1].size for p in splits)
        split_receiver_rows, split_giver_rows = np.full((n_split, width), -1), np.full((n_split, width), -1)
        at = 0
        for p in splits:
            end = at + p[1].size
            split_receiver_rows[at:end, :p[2].shape[1]] = p[2]
            split_giver_rows[at:end, :p[3].shape[1]] = p[3]
            at = end
        receiver = np.concatenate([np.full(p[1].size, p[0], dtype=np.int64) for p in parts]) if parts \
            else np.zeros(0, dtype=np.int64)
        return Exchanges(receiver=receiver, giver=cat(1).astype(np.int64), gained=cat(4).astype(np.int64),
                         returned=cat(5).astype(np.int64), split_receiver_rows=split_receiver_rows,
                         split_giver_rows=split_giver_rows, table=table)

    @staticmethod
    def _splits_of(mine: np.ndarray, theirs: np.ndarray):
        """Rows of every two-way split of ``mine`` + ``theirs[j]``; split-major order, (S J, u)."""
        union = np.concatenate([np.broadcast_to(mine, (theirs.shape[0], mine.size)), theirs], axis=1)
        mask = _splits(union.shape[1])[:, None, :]  # (S, 1, u)
        width = union.shape[1]
        none = np.full(mask.shape[0] * union.shape[0], -1)
        return (np.where(mask, union, -1).reshape(-1, width), np.where(mask, -1, union).reshape(-1, width),
                none, none)

    @staticmethod
    def _moves_and_swaps(theirs: np.ndarray, swap_out: np.ndarray):
        """``(gained, returned)`` of each move of one of ``theirs[j]`` to the receiver (the
        giver keeps one; returned -1) and each swap of one of ``swap_out`` (a subset of
        the receiver's) for one of ``theirs[j]``; moves first, each in (t, j) order."""
        n_givers, size = theirs.shape
        gain, back = [], []
        if size >= 2:  # moves: the giver keeps one
            gain.append(theirs.T.ravel())
            back.append(np.full(size * n_givers, -1))
        for a in swap_out:  # swaps: a for theirs[j, t]
            gain.append(theirs.T.ravel())
            back.append(np.full(size * n_givers, a))
        if not gain:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(gain), np.concatenate(back)

    def _compact(self):
        """Water-filling of every client over its own subchannels (K x L), cached per
        ownership, with each subchannel's sorted position in its owner's row."""
        def build():
            table = self.table()
            safe = np.maximum(table, 0)
            solver = WaterFilling(np.where(table >= 0, self.snr[np.arange(self.num_clients)[:, None], safe], 0.0),
                                  self.bandwidth[safe])
            position = np.full(self.owner.size, -1)
            held = table >= 0
            position[table[held]] = solver.sorted_position()[held]
            return solver, position

        # Kept for the last few ownerships: a chain tries an exchange and puts the owners back.
        return _remember(self, "_compact_memo", self.owner.tobytes(), build)

    def _delta_rate(self, clients, removed, added, budget_w) -> np.ndarray:
        """Rate of ``clients[q]`` without its subchannel ``removed[q]`` and with ``added[q]`` (-1: none)."""
        solver, position = self._compact()
        at = np.where(removed >= 0, position[np.maximum(removed, 0)], -1)
        safe = np.maximum(added, 0)
        snr = np.where(added >= 0, self.snr[clients, safe], 0.0)
        return solver.max_rate_delta(clients, budget_w[clients], at, snr, self.bandwidth[safe])

    def receiver_max_rate(self, ex: Exchanges, budget_w: np.ndarray, *, gaining_only: bool = False) -> np.ndarray:
        """(Q,) receiver's water-filling rate at its budget after each exchange.

        Moves and swaps shift the receiver's sorted set (:meth:`WaterFilling.max_rate_delta`);
        general splits are solved afresh. ``gaining_only``: a split that leaves the receiver
        only subchannels it holds now (it gives, gains nothing) is not solved and reported
        at rate 0: with fewer subchannels at the same budget its rate cannot rise, so such
        an exchange cannot lower the delay of a receiver that is the slowest. Remembered for
        the last few exchange lists (a chain asks again for those its failed search just
        scored). Read-only.
        """
        key = (id(ex), np.asarray(budget_w).tobytes(), gaining_only)
        found = _remember(self, "_receiver_memo", key,
                          lambda: (ex, self._receiver_max_rate(ex, budget_w, gaining_only)))
        if found[0] is ex:
            return found[1]
        return self._receiver_max_rate(ex, budget_w, gaining_only)  # an id reused by another list

    def _receiver_max_rate(self, ex: Exchanges, budget_w: np.ndarray, gaining_only: bool) -> np.ndarray:
        rate = np.empty(ex.size)
        split = ex.gained < 0
        if np.any(split):
            receivers, rows = ex.receiver[split], ex.split_receiver_rows
            solve = np.ones(receivers.size, dtype=bool)
            if gaining_only:
                solve = np.any((rows >= 0) & (self.owner[np.maximum(rows, 0)] != receivers[:, None]), axis=1)
            split_rate = np.zeros(receivers.size)
            if np.any(solve):
                split_rate[solve] = self.grouped(receivers[solve], rows[solve], "max_rate",
                                                 budget_w[receivers[solve]])
            rate[split] = split_rate
        if not np.all(split):
            rate[~split] = self._delta_rate(ex.receiver[~split], ex.returned[~split], ex.gained[~split], budget_w)
        return rate

    def giver_max_rate(self, ex: Exchanges, budget_w: np.ndarray, pick: np.ndarray | None = None) -> np.ndarray:
        """(P,) giver's water-filling rate at its budget after each exchange of ``pick``
        (default all: P = Q); the search asks only for those that can still win."""
        pick = np.arange(ex.size) if pick is None else np.asarray(pick)
        rate = np.empty(pick.size)
        split = ex.gained[pick] < 0
        if np.any(split):
            at = (np.cumsum(ex.gained < 0) - 1)[pick[split]]
            givers = ex.giver[pick[split]]
            rate[split] = self.grouped(givers, ex.split_giver_rows[at], "max_rate", budget_w[givers])
        if not np.all(split):
            moved = pick[~split]
            rate[~split] = self._delta_rate(ex.giver[moved], ex.gained[moved], ex.returned[moved], budget_w)
        return rate

    def grouped(self, clients: np.ndarray, rows: np.ndarray, method: str, values: np.ndarray) -> np.ndarray:
        """``WaterFilling.<method>(values)[0]`` for each row, solved in groups of equal
        width so that one large set does not pad every row."""
        rows = _trim(rows)
        if rows.shape[1] <= 8:  # narrow enough: one batch
            return getattr(self.water_filling(clients, rows), method)(values)[0]
        last = rows.shape[1] - np.argmax(rows[:, ::-1] >= 0, axis=1)  # width up to the last subchannel
        result = np.empty(rows.shape[0])
        for width in np.unique(last):
            pick = last == width
            solver = self.water_filling(clients[pick], rows[pick, :max(width, 1)])
            result[pick] = getattr(solver, method)(values[pick])[0]
        return result

    def apply(self, exchanges: Exchanges, q: int) -> None:
        """Carry out exchange ``q``."""
        gained, returned = exchanges.gained[q], exchanges.returned[q]
        if gained >= 0:  # a move or a swap
            self.owner[gained] = exchanges.receiver[q]
            if returned >= 0:
                self.owner[returned] = exchanges.giver[q]
            return
        i = exchanges.split_position(q)
        for rows, client in ((exchanges.split_receiver_rows, exchanges.receiver),
                             (exchanges.split_giver_rows, exchanges.giver)):
            held = rows[i][rows[i] >= 0]
            self.owner[held] = client[q]


#: Entries each memo of a ChannelSet keeps (ownerships and exchange lists of the last few steps).
_MEMO_SIZE = 4


def _remember(owner_object, name: str, key, compute):
    """``compute()``, kept in the small dict ``owner_object.<name>`` under ``key`` (oldest dropped first)."""
    memo = owner_object.__dict__.setdefault(name, {})
    if key not in memo:
        if len(memo) >= _MEMO_SIZE:
            del memo[next(iter(memo))]
        memo[key] = compute()
    return memo[key]
