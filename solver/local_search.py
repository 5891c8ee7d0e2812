"""Local search over subchannel exchanges for the greedy's delay model.

Phase 3 of :mod:`solver.assignment`. Steps, in order of preference:

1. the exchange with the bottleneck (any re-partition of its subchannels and one
   other client's, :mod:`solver.channel_sets`) that lowers the largest delay most;
2. when none does, a *chain*: the bottleneck takes what helps it from client j
   even if j becomes too slow, and j then repairs itself with a third client;
   kept only if the largest delay drops (this finds 3-way rotations);
3. failing that, a *soft* step among the slowest clients: an exchange that lowers
   ``sum_k (d_k / max d)^SOFT_POWER`` without raising the maximum, to leave a
   plateau of equally slow assignments (at most ``SOFT_STEPS`` in a row).

Every candidate is scored exactly by water-filling (the closed-form shifts of
:meth:`solver.waterfilling.WaterFilling.max_rate_delta` for moves and swaps).
"""

from __future__ import annotations

import numpy as np

from solver.objective import transfer_s


class DelayModel:
    """Client delays under fixed power budgets: ``fixed + u / R + v / R'``.

    Attributes
    ----------
    fixed : (K,) float, s
        Compute, server and downlink time of each client.
    u, v : float, bits
        Bits per round over the main set and over the federated set (0 if none).
    sets : list of ChannelSet
        The main set, and the federated set when there is one.
    budgets : list of (K,) float, W
        Power each client water-fills over its subchannels of each set.
    rates : list of (K,) float, bit/s
        Current rate of each client on each set (kept up to date by the search).
    """

    def __init__(self, fixed, u, v, sets, budgets):
        self.fixed, self.u, self.v, self.sets, self.budgets = fixed, u, v, sets, budgets
        self.rates = [s.current().max_rate(b)[0] for s, b in zip(sets, budgets)]

    def delays(self, which=None, rate=None, clients=None) -> np.ndarray:
        """Delays of ``clients`` (default all) with set ``which``'s rate replaced by ``rate``."""
        if clients is None:  # every client: no gather (the search asks this at every step)
            pair = list(self.rates) + [None]
            fixed = self.fixed
        else:
            pair = [r[clients] for r in self.rates] + [None]
            fixed = self.fixed[clients]
        if which is not None:
            pair[which] = rate
        fed = transfer_s(self.v, pair[1]) if len(self.sets) == 2 else 0.0
        return fixed + transfer_s(self.u, pair[0]) + fed


def others_max(values: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(Q,) largest of ``values`` over the clients other than ``a[q]`` and ``b[q]``."""
    order = np.argsort(-values, kind="stable")[:3]
    top = np.append(values[order], [-np.inf] * (3 - order.size))
    order = np.append(order, [-1] * (3 - order.size))
    result = np.full(a.shape, -np.inf)
    for rank in range(2, -1, -1):  # the first top entry not excluded wins
        free = (order[rank] != a) & (order[rank] != b)
        result = np.where(free, top[rank], result)
    return result


def _best_exchange(model: DelayModel, receivers, soft: bool, below: float | None = None):
    """The exchange that lowers the largest delay most (``soft=False``; below
    ``below`` if given), or, without raising it, the soft maximum
    ``sum_k (d_k / max d)^SOFT_POWER`` (``soft=True``)."""
    current = model.delays()
    peak = current.max()
    best = (-SOFT_GAIN if soft else (peak if below is None else below) * (1 - 1e-12), None)
    for which, s in enumerate(model.sets):
        ex = s.exchanges(receivers)
        if ex.size == 0:
            continue
        # A receiver already at least as slow as the bar cannot get under it by only giving.
        slowest = not soft and bool(np.all(current[np.atleast_1d(receivers)] >= best[0]))
        recv_rate = s.receiver_max_rate(ex, model.budgets[which], gaining_only=slowest)
        gain = model.delays(which, recv_rate, ex.receiver)
        # Without the soft score an exchange scores at least the receiver's new delay:
        # the giver's side is solved only for those that can still beat the best.
        pick = np.arange(ex.size) if soft else np.flatnonzero(gain < best[0])
        if pick.size == 0:
            continue
        giver_rate = s.giver_max_rate(ex, model.budgets[which], pick)
        gain, receiver, giver = gain[pick], ex.receiver[pick], ex.giver[pick]
        loss = model.delays(which, giver_rate, giver)
        new_max = np.maximum(np.maximum(gain, loss), others_max(current, receiver, giver))
        if soft:
            score = ((gain / peak) ** SOFT_POWER + (loss / peak) ** SOFT_POWER
                     - (current[receiver] / peak) ** SOFT_POWER - (current[giver] / peak) ** SOFT_POWER)
            score = np.where(new_max <= peak, score, np.inf)
        else:
            score = new_max
        i = int(np.argmin(score))
        if score[i] < best[0]:
            q = int(pick[i])
            best = (score[i], (which, ex, q, recv_rate[q], giver_rate[i]))
    return best[1]


#: Exponent of the soft maximum that breaks ties between equally slow assignments.
SOFT_POWER = 8.0
#: Least drop of the soft maximum worth a soft step (each term is at most 1).
SOFT_GAIN = 1e-3
#: Clients (slowest first) whose exchanges the soft step tries.
SOFT_RECEIVERS = 3
#: Soft steps in a row without lowering the maximum before the search gives up.
SOFT_STEPS = 3
#: First steps of a two-exchange chain tried when the bottleneck is stuck.
CHAIN_TRIES = 5


def _chain(model: DelayModel, tries: int) -> bool:
    """Two exchanges in a row: the bottleneck takes what it needs from a client j
    even if j becomes slower than the round, then j repairs itself with a third
    client; kept only if the largest delay drops. Tries the ``tries`` first steps
    that harm the giver least (the easiest to repair)."""
    current = model.delays()
    k, peak = int(np.argmax(current)), current.max()
    firsts = []
    for which, s in enumerate(model.sets):
        ex = s.exchanges(k)
        if ex.size == 0:
            continue
        recv_rate = s.receiver_max_rate(ex, model.budgets[which], gaining_only=True)  # k is the slowest
        gain = model.delays(which, recv_rate, ex.receiver)
        rest = others_max(current, ex.receiver, ex.giver)
        pick = np.flatnonzero((gain < peak * (1 - 1e-12)) & (rest < peak * (1 - 1e-12)))
        loss = model.delays(which, s.giver_max_rate(ex, model.budgets[which], pick), ex.giver[pick])
        for i, q in enumerate(pick):
            firsts.append((loss[i], which, ex, int(q), recv_rate[q]))
    firsts.sort(key=lambda first: first[0])
    for _, which, ex, q, recv_rate in firsts[:tries]:
        s, giver = model.sets[which], int(ex.giver[q])
        saved_owner, saved_rates = s.owner.copy(), [r.copy() for r in model.rates]
        s.apply(ex, q)
        model.rates[which][k] = recv_rate
        model.rates[which][giver] = s.rate_of(giver, model.budgets[which][giver])
        repair = _best_exchange(model, giver, soft=False, below=peak)
        if repair is not None:
            _apply(model, repair)
            return True
        s.owner, model.rates = saved_owner, saved_rates
    return False


def _apply(model: DelayModel, found) -> None:
    which, ex, q, recv_rate, giver_rate = found
    model.sets[which].apply(ex, q)
    model.rates[which][ex.receiver[q]] = recv_rate
    model.rates[which][ex.giver[q]] = giver_rate


def search(model: DelayModel, max_moves: int) -> None:
    """Phase 3: exchanges with the bottleneck while the maximum drops; when none
    helps, a two-exchange chain through another client (:func:`_chain`); failing
    that, one exchange among the slowest clients that lowers the soft maximum
    without raising the maximum (at most ``SOFT_STEPS`` in a row that do not
    lead to a lower maximum); then the bottleneck again."""
    soft_in_a_row = 0
    for _ in range(max_moves):
        current = model.delays()
        found = _best_exchange(model, int(np.argmax(current)), soft=False)
        if found is None and _chain(model, CHAIN_TRIES):
            soft_in_a_row = 0
            continue
        if found is None:
            if soft_in_a_row == SOFT_STEPS:
                return
            soft_in_a_row += 1
            slowest = np.argsort(-current, kind="stable")[:SOFT_RECEIVERS]
            found = _best_exchange(model, slowest, soft=True)
        else:
            soft_in_a_row = 0
        if found is None:
            return
        _apply(model, found)
