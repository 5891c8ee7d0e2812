"""Replay rounds computed in one go, for thousands of clients.

A replay does no work at the end of its events, so when no process outside a
round can observe what happens inside it, the round is a function of its
start: every client's chain of steps is fixed by the cost table and its links,
and the chains meet only in the main server's FIFO queue. Then
(:func:`applies`) the round is computed here with one heap of server
arrivals instead of one SimPy event per step, the transfers' ends come from
each link's running total of bits (:class:`channel.timeline.LinkTimeline`),
the rows go to the recorder as blocks of columns, and the clock takes one
timeout per round. The events are those the SimPy processes give, to the
rounding of a transfer's integral (tests/cosim/test_fast_replay.py compares
them row for row). The conditions: the replay workload; split learning
(``split``, ``sfl_v2``); ``aggregation.mode: barrier`` with every client taking
part and always online; one main-server slot; a deterministic rate (not the
``mcs`` model's block errors) on links without mobility; a unicast broadcast.
"""

from __future__ import annotations

import heapq

import numpy as np

from channel.timeline import LinkTimeline

from .scenario import Scenario
from .trace import STRING_FIELDS, Codes

NAN = float("nan")
BITS_PER_BYTE = 8


def applies(sc: Scenario, workload) -> bool:
    """Whether rounds of ``sc`` driving ``workload`` can be computed in one go (module docstring)."""
    from .workloads.replay import ReplayWorkload

    return isinstance(workload, ReplayWorkload) and scenario_applies(sc)


def scenario_applies(sc: Scenario) -> bool:
    """What :func:`applies` asks of the scenario: a replay whose rounds nothing outside them can observe."""
    ch = sc.channel
    return (sc.workload.kind == "replay" and sc.strategy.name in ("split", "sfl_v2")
            and sc.aggregation.mode == "barrier" and sc.participation.fraction == 1.0
            and sc.availability.model == "always" and sc.compute.server_slots == 1
            and sc.link.rate_model != "mcs" and sc.mobility.model == "none" and ch.broadcast == "unicast")


class FastReplay:
    """Computes the rounds of a :class:`cosim.rounds.Federation` in one go (module docstring)."""

    def __init__(self, federation):
        self.fed = federation
        self.sim = federation.sim
        self._timelines: dict[int, LinkTimeline] = {}

    def _timeline(self, link, t_s: float) -> LinkTimeline:
        tl = self._timelines.get(id(link))
        if tl is None or tl.link is not link:
            tl = self._timelines[id(link)] = LinkTimeline(link, start_s=t_s)
        else:
            tl.forget_before(t_s)
        return tl

    def round(self, r: int, plan, selected: list[int], works: dict):
        """Process body: round ``r``'s clients, aggregation and broadcast; returns (each client's end, broadcast
        bytes). Fills ``works`` as the SimPy processes would."""
        sim, wl = self.sim, self.fed.workload
        t0 = sim.env.now
        n_iter = self.fed.strategy.sc.training.local_iterations
        fwd, srv, bwd = wl.client_forward(0), wl.server_step(0), wl.client_backward(0)
        act_bytes, grad_bytes = fwd.run().nbytes, srv.run().nbytes
        adapter_bytes = wl.adapter_upload(0).nbytes
        srv_s = srv.flops / sim.server.flops_per_s
        ks = list(selected)
        up = [self._timeline(sim.radios[k].uplink, t0) for k in ks]
        down = [self._timeline(sim.radios[k].downlink, t0) for k in ks]
        fwd_s = [fwd.flops / sim.client_flops_per_s[k] for k in ks]
        bwd_s = [bwd.flops / sim.client_flops_per_s[k] for k in ks]
        steps = _serve(t0, n_iter, srv_s, fwd_s, bwd_s, [_durations(tl, 8 * act_bytes) for tl in up],
                       [_durations(tl, 8 * grad_bytes) for tl in down])
        rows = steps.rows(r, ks, sim, fwd, srv, bwd, act_bytes, grad_bytes, up, down)
        done, uploads = {}, []
        compute_s = steps.compute_s().tolist()
        for j, k in enumerate(ks):
            t = steps.upload_start[j]
            d = up[j].duration_s(BITS_PER_BYTE * adapter_bytes, t)
            done[k] = t + d
            uploads.append(d)
            w = works[k]
            w.compute_s = compute_s[j]
            w.uplink_bytes = n_iter * act_bytes + adapter_bytes
            w.adapter_bytes, w.adapter_upload_s = adapter_bytes, d
        rows.append(_transfers(r, ks, "adapter_upload", steps.upload_start, uploads, adapter_bytes, up, sim,
                               down=False))
        barrier = max(done.values())
        counts = wl.sample_counts()
        agg = wl.aggregate({k: float(counts[k]) for k in ks})
        agg_s = agg.flops / sim.fed_server_flops_per_s
        rows.append(_rows(r, [-1], [-1], "aggregate", [barrier], agg_s, agg.flops,
                          agg.flops * sim.server_j_per_flop, "server"))
        sent = barrier + agg_s
        nbytes = agg.run().nbytes
        bcast = [tl.duration_s(BITS_PER_BYTE * nbytes, sent) for tl in down]
        rows.append(_transfers(r, ks, "broadcast", [sent] * len(ks), bcast, nbytes, down, sim, down=True))
        cols = _concat(rows)
        # in the order the events end, as the clock writes them
        sim.rec.add_events(cols, order=np.argsort(cols["t_end_s"], kind="stable"))
        yield sim.env.timeout(max(sent + d for d in bcast) - t0)
        return done, nbytes


def _concat(blocks: list[dict]) -> dict:
    """Blocks of columns (arrays or scalars) as one block of arrays; strings as :class:`Codes`."""
    lens = [len(block["client"]) for block in blocks]
    cols = {}
    for c in blocks[0]:
        first = blocks[0][c]
        if np.isscalar(first) and all(np.isscalar(b[c]) and (b[c] is first or b[c] == first) for b in blocks[1:]):
            cols[c] = first  # the same in every row: kept as one value
        elif c in STRING_FIELDS:
            cols[c] = Codes.concat([Codes.of(block[c], m) for block, m in zip(blocks, lens)])
        else:
            cols[c] = np.concatenate([np.broadcast_to(block[c], (m,)) for block, m in zip(blocks, lens)])
    return cols


def _durations(tl: LinkTimeline, bits: float):
    """A transfer's duration: a constant on a static link, else a function of its start giving the duration (the
    timeline's integral) and the SNR the trace reports. The SNR is read with the duration, while the timeline's
    window still holds the start: a client that then waits long in the server's queue moves its window past it."""
    if tl.static:
        return float(tl.duration_s(bits, 0.0))
    return lambda t: (tl.duration_s(bits, t), tl.snr_db(t))


class _Steps:
    """When every (client, iteration) step of a round happens; flat arrays, client-major."""

    def __init__(self, n_iter, fwd_s, bwd_s, srv_s, fwd_start, up_s, arrival, srv_start, down_s, upload_start,
                 up_snr, down_snr):
        self.n_iter, self.fwd_s, self.bwd_s, self.srv_s = n_iter, fwd_s, bwd_s, srv_s
        self.fwd_start, self.up_s, self.arrival = np.array(fwd_start), np.array(up_s), np.array(arrival)
        self.srv_start, self.down_s = np.array(srv_start), np.array(down_s)
        self.upload_start = upload_start
        self.up_snr, self.down_snr = np.array(up_snr), np.array(down_snr)  # NaN on static links

    def compute_s(self) -> np.ndarray:
        """Each client's compute time as the clock sums it: each step's end minus its start, added in order."""
        k = len(self.fwd_s)
        f = np.repeat(np.array(self.fwd_s), self.n_iter)
        b = np.repeat(np.array(self.bwd_s), self.n_iter)
        bwd_start = (self.srv_start + self.srv_s) + self.down_s
        terms = np.empty((k, 2 * self.n_iter + 1))
        terms[:, 0] = 0.0
        terms[:, 1::2] = ((self.fwd_start + f) - self.fwd_start).reshape(k, self.n_iter)
        terms[:, 2::2] = ((bwd_start + b) - bwd_start).reshape(k, self.n_iter)
        return np.add.accumulate(terms, axis=1)[:, -1]  # sequential, as the clock's running sum

    def rows(self, r, ks, sim, fwd, srv, bwd, act_bytes, grad_bytes, up, down) -> list[dict]:
        """The rows of every local iteration's steps, as blocks of columns."""
        n_iter = self.n_iter
        client = np.repeat(np.array(ks, dtype=np.int64), n_iter)
        iteration = np.tile(np.arange(n_iter, dtype=np.int64), len(ks))
        jpf = np.repeat(np.array([sim.device_j_per_flop[k] for k in ks]), n_iter)
        f_s, b_s = np.repeat(np.array(self.fwd_s), n_iter), np.repeat(np.array(self.bwd_s), n_iter)
        down_start = self.srv_start + self.srv_s
        waits = self.srv_start > self.arrival
        return [
            _rows(r, iteration, client, "client_forward", self.fwd_start, f_s, fwd.flops, fwd.flops * jpf, "device"),
            _transfers(r, ks, "uplink", self.fwd_start + f_s, self.up_s, act_bytes, up, sim, down=False,
                       n_iter=n_iter, snr_db=self.up_snr),
            _rows(r, iteration[waits], client[waits], "server_queue", self.arrival[waits],
                  self.srv_start[waits] - self.arrival[waits], 0.0, 0.0, ""),
            _rows(r, iteration, client, "server_step", self.srv_start, self.srv_s, srv.flops,
                  srv.flops * sim.server_j_per_flop, "server"),
            _transfers(r, ks, "downlink", down_start, self.down_s, grad_bytes, down, sim, down=True, n_iter=n_iter,
                       snr_db=self.down_snr),
            _rows(r, iteration, client, "client_backward", down_start + self.down_s, b_s, bwd.flops, bwd.flops * jpf,
                  "device"),
        ]


def _serve(t0, n_iter, srv_s, fwd_s, bwd_s, up, down) -> _Steps:
    """The round's steps: each client's chain, coupled with the others' only in the main server's FIFO queue.

    ``up[j]`` / ``down[j]``: client j's uplink of the activations / downlink of the gradient, a duration
    (static link) or a function of the start time giving it. Arrivals at equal times are served in the
    order they were computed (as the clock's events).
    """
    n = len(fwd_s) * n_iter
    fwd_start, up_d, arrival, srv_start, down_d = [0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n
    up_snr, down_snr = [NAN] * n, [NAN] * n
    upload_start = [0.0] * len(fwd_s)
    heap = []

    def send(links, durations, snrs, j, idx, t):
        """Client j's transfer of step idx starting at t: its duration (and SNR, on a fading link)."""
        link = links[j]
        if isinstance(link, float):
            durations[idx] = link
        else:
            durations[idx], snrs[idx] = link(t)
        return durations[idx]

    def forward(j, idx, t):
        """Client j's forward of step idx from t and its uplink: the arrival at the main server."""
        fwd_start[idx] = t
        end = t + fwd_s[j]
        arrival[idx] = end + send(up, up_d, up_snr, j, idx, end)
        return arrival[idx]

    for j in range(len(fwd_s)):
        heap.append((forward(j, j * n_iter, t0), j * n_iter, j))
    heapq.heapify(heap)
    pop, push = heapq.heappop, heapq.heappush
    free = t0
    while heap:
        a, idx, j = pop(heap)
        start = srv_start[idx] = a if a >= free else free
        free = start + srv_s
        end = (free + send(down, down_d, down_snr, j, idx, free)) + bwd_s[j]
        idx += 1
        if idx % n_iter:
            push(heap, (forward(j, idx, end), idx, j))
        else:
            upload_start[j] = end
    return _Steps(n_iter, fwd_s, bwd_s, srv_s, fwd_start, up_d, arrival, srv_start, down_d, upload_start, up_snr,
                  down_snr)


def _rows(r, iteration, client, kind, start, duration, flops, energy, energy_of) -> dict:
    """Rows of compute (or waiting) events as columns; a scalar stands for the same value in every row."""
    client = np.asarray(client, dtype=np.int64)
    m = client.size
    start = np.asarray(start, dtype=float)
    duration = np.broadcast_to(np.asarray(duration, dtype=float), (m,))
    return {"round": r, "iteration": np.broadcast_to(np.asarray(iteration, dtype=np.int64), (m,)),
            "client": client, "kind": kind, "t_start_s": start, "t_end_s": start + duration,
            "duration_s": duration, "flops": float(flops), "bytes": 0, "rate_bps": NAN, "snr_db": NAN,
            "n_subchannels": 0, "power_w": NAN, "loss": NAN, "cut": False,
            "energy_j": np.broadcast_to(np.asarray(energy, dtype=float), (m,)), "energy_of": energy_of,
            "retransmissions": 0, "distance_m": NAN}


def _transfers(r, ks, kind, start, duration, nbytes, timelines, sim, *, down: bool, n_iter: int = 0,
               snr_db=None) -> dict:
    """Rows of transfers as columns: one per client (``n_iter`` 0, iteration -1) or per client and iteration."""
    reps = max(n_iter, 1)
    iteration = np.tile(np.arange(n_iter, dtype=np.int64), len(ks)) if n_iter else np.full(len(ks), -1)
    client = np.repeat(np.array(ks, dtype=np.int64), reps)
    cols = _rows(r, iteration, client, kind, start, duration, 0.0, 0.0, "base_station" if down else "device")
    radios = [sim.radios[k] for k in ks]
    links = [radio.downlink if down else radio.uplink for radio in radios]
    d = cols["duration_s"]
    cols["bytes"] = np.full(d.size, int(nbytes), dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        cols["rate_bps"] = np.where(nbytes > 0, BITS_PER_BYTE * nbytes / d, NAN)
    starts = cols["t_start_s"].reshape(len(ks), reps).tolist()
    known = np.asarray(snr_db).reshape(len(ks), reps).tolist() if snr_db is not None else [None] * len(ks)
    cols["snr_db"] = np.array([[tl.snr_db(0.0)] * reps if tl.static else known[j] or [tl.snr_db(t) for t in row]
                               for j, (tl, row) in enumerate(zip(timelines, starts))]).ravel()
    cols["n_subchannels"] = np.repeat(np.array([len(link.subchannels) for link in links], dtype=np.int64), reps)
    power = [radio.downlink_power_w if down else radio.uplink_power_w for radio in radios]
    cols["power_w"] = np.repeat(np.array(power, dtype=float), reps)
    cols["energy_j"] = np.repeat(np.array([tl.power_w for tl in timelines]), reps) * d
    cols["distance_m"] = np.repeat(np.array([link.distance_m for link in links], dtype=float), reps)
    return cols
