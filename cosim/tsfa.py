"""TSFA in the run: the offline rank and the online per-round decision, on the radio the run has.

The decisions themselves live in :mod:`solver.tsfa` (plain numbers); this module
turns the clients' radios into what the base station knows (each client's mean
gain over the band: the current fading block, or the large-scale gain only, as
``allocation.knowledge`` says), the measured step FLOPs and adapter bytes into
compute times and bits, and a decision's bandwidth shares into whole
subchannels (contiguous blocks, in client order, the device's power spread
evenly over its own).
"""

from __future__ import annotations

import numpy as np

import channel
from solver import tsfa as solver_tsfa

from .plan import RoundPlan
from .radio import with_uplink
from .scenario import Scenario

BITS_PER_BYTE = 8


def _noise_psd_w_per_hz(sc: Scenario) -> float:
    ch = sc.channel
    return float(channel.noise_power_w(ch.subchannel_bandwidth_hz, noise_figure_db=ch.bs_noise_figure_db,
                                       noise_psd_dbm_per_hz=ch.noise_psd_dbm_per_hz)) / ch.subchannel_bandwidth_hz


def mean_gains(radios: list, t_s: float, knowledge: str) -> np.ndarray:
    """Each client's linear gain averaged over all subchannels: with the fading block at ``t_s``, or without."""
    out = []
    for r in radios:
        g = r.large_scale_gain_lin
        if knowledge == "current":
            fading = r.uplink.fading
            g *= float(np.mean(fading.power_gain(fading.block_index(t_s))))
        out.append(g)
    return np.array(out)


def link_rate_bps(link, t_s: float, knowledge: str) -> float:
    """A link's rate as the base station sees it: in the fading block at ``t_s`` ('current'), or without fading."""
    if knowledge == "current":
        return link.rate_bps(link.fading.block_index(t_s))
    return float(np.sum(channel.shannon_rate_bps(link.bandwidth_hz, link.mean_snr_lin)))


def broadcast_s(radios: list, nbytes: int, t_s: float, knowledge: str = "current") -> float:
    """How long the broadcast of ``nbytes`` takes at each client's downlink rate (the slowest), see :func:`link_rate_bps`."""
    return max(BITS_PER_BYTE * nbytes / link_rate_bps(r.downlink, t_s, knowledge) for r in radios)


def aggregate_flops(n_clients: int, dense_nbytes: int, element_size: int = 4) -> float:
    """The server's averaging of the factors: one multiply and one add per value per client."""
    return 2.0 * n_clients * dense_nbytes / element_size


class TsfaPolicy:
    """TSFA's online stage as the round policy of the ``tsfa`` strategy (:mod:`cosim.strategies.fed`).

    Parameters
    ----------
    sc : Scenario
        ``tsfa`` (budget, V, sparsity bounds), ``channel``, ``clients.max_power_dbm``,
        ``allocation.knowledge``, ``training.local_iterations``.
    step_flops : float
        FLOPs of one local step (measured).
    dense_nbytes : int
        Bytes of a client's adapter sent dense (measured).
    client_flops_per_s : sequence of float
    weights : sequence of float
        Each client's data share (sums to 1): the penalty's weights.
    rank : int, optional
        The adapters' LoRA rank: SOFT sends whole rank components, ``ceil((1 - rho) r)``
        of r, and the predicted round counts what it will send. None: ``(1 - rho)`` of
        the dense bytes.
    """

    def __init__(self, sc: Scenario, *, step_flops: float, dense_nbytes: int, client_flops_per_s, weights,
                 rank: int | None = None):
        self.sc = sc
        self.rank = rank
        self.dense_bits = np.full(sc.clients.count, BITS_PER_BYTE * float(dense_nbytes))
        self.dense_nbytes = dense_nbytes
        self.compute_s = sc.training.local_iterations * step_flops / np.asarray(client_flops_per_s, dtype=float)
        self.weights = np.asarray(weights, dtype=float) / float(np.sum(weights))
        self.queue = solver_tsfa.VirtualQueue(sc.tsfa.latency_budget_s)
        self.decisions: list[dict] = []

    def plan(self, round_index: int, now_s: float, radios: list, clients: list[int] | None = None) -> RoundPlan:
        """The round's bandwidth shares and sparsities for ``clients`` (default: all), whose radios are ``radios``."""
        sc, t = self.sc, self.sc.tsfa
        idx = np.arange(len(radios)) if clients is None else np.asarray(clients, dtype=int)
        dense_bits, compute_s = self.dense_bits[idx], self.compute_s[idx]
        weights = self.weights if clients is None else self.weights[idx] / self.weights[idx].sum()
        ch = sc.channel
        knowledge = sc.allocation.knowledge
        aggregate_s = aggregate_flops(len(radios), self.dense_nbytes) / sc.compute.fed_server_flops_per_s
        # The broadcast goes over each client's own subchannels, which this decision changes; the
        # decision is the same for any constant here (it shifts every latency alike), so it is
        # taken on the current allocation's broadcast and the prediction made after, on the plan.
        fixed = aggregate_s + broadcast_s(radios, self.dense_nbytes, now_s, knowledge)
        q = self.queue.backlog_s
        d = solver_tsfa.tsfa_decision(
            dense_bits=dense_bits, compute_s=compute_s,
            gains=mean_gains(radios, now_s, knowledge),
            powers_w=float(channel.dbm_to_watt(sc.clients.max_power_dbm)),
            noise_psd_w_per_hz=_noise_psd_w_per_hz(sc), bandwidth_hz=ch.n_subchannels * ch.subchannel_bandwidth_hz,
            fixed_s=fixed, weights=weights, v=t.v, queue_s=q, rho_min=t.sparsity_min, rho_max=t.sparsity_max)
        counts = solver_tsfa.shares_to_subchannels(d.bandwidth_share, ch.n_subchannels)
        device_w = float(channel.dbm_to_watt(sc.clients.max_power_dbm))
        new, start = [], 0
        for k, radio in enumerate(radios):
            subs = np.arange(start, start + counts[k])
            start += counts[k]
            new.append(with_uplink(radio, sc, subs, channel.equal_power_w(device_w, len(subs))))
        # The plan's round on what the base station sees: whole subchannels, equal power on them.
        upload_s = [self.sent_fraction(rho) * bits / link_rate_bps(r.uplink, now_s, knowledge)
                    for rho, bits, r in zip(d.sparsity, dense_bits, new)]
        predicted = float(np.max(compute_s + np.array(upload_s))
                          + aggregate_s + broadcast_s(new, self.dense_nbytes, now_s, knowledge))
        self.decisions.append({"round": round_index, "queue_s": q, "predicted_s": predicted,
                               "sparsity": [float(x) for x in d.sparsity],
                               "bandwidth_share": [float(x) for x in d.bandwidth_share],
                               "subchannels": [int(c) for c in counts]})
        return RoundPlan(radios=new, sparsity=[float(x) for x in d.sparsity], predicted_s=predicted,
                         queue_s=q, clients=None if clients is None else list(clients))

    def sent_fraction(self, sparsity: float) -> float:
        """The fraction of the dense adapter an upload at ``sparsity`` sends (index bytes aside)."""
        if self.rank is None:
            return 1.0 - sparsity
        return float(np.ceil((1.0 - sparsity) * self.rank - 1e-9)) / self.rank  # llm_split.sparsify.n_keep

    def observe(self, latency_s: float) -> float:
        return self.queue.update(latency_s)

    def summary(self) -> dict:
        """The budget, V, the queue after the last round and every round's decision."""
        return {"latency_budget_s": self.sc.tsfa.latency_budget_s, "v": self.sc.tsfa.v,
                "final_queue_s": self.queue.backlog_s, "decisions": self.decisions}


def offline_rank(sc: Scenario, radios: list, measured: dict[int, tuple[float, int]], client_flops_per_s) -> int:
    """TSFA's offline stage (:func:`solver.tsfa.offline_rank`) on the average channel.

    Every rank is charged its own round: its step's compute, its adapter's upload,
    aggregation and broadcast (the broadcast at the downlink's rate without
    fading, as the uplink is taken at the large-scale gain).

    ``measured``: rank -> (step FLOPs, dense adapter bytes), measured on the real model.
    """
    ranks = sorted(measured)
    flops = np.asarray(client_flops_per_s, dtype=float)
    k = sc.clients.count
    bits = np.array([[BITS_PER_BYTE * measured[r][1]] * k for r in ranks], dtype=float)
    compute = np.array([sc.training.local_iterations * measured[r][0] / flops for r in ranks])
    # Each rank's own aggregation and broadcast, on the average channel like the uplink.
    fixed = np.array([aggregate_flops(k, measured[r][1]) / sc.compute.fed_server_flops_per_s
                      + broadcast_s(radios, measured[r][1], 0.0, "average") for r in ranks])
    ch, t = sc.channel, sc.tsfa
    return solver_tsfa.offline_rank(
        ranks, bits, compute, mean_gains(radios, 0.0, "average"),
        float(channel.dbm_to_watt(sc.clients.max_power_dbm)), _noise_psd_w_per_hz(sc),
        ch.n_subchannels * ch.subchannel_bandwidth_hz, fixed, t.latency_budget_s, t.sparsity_min, t.sparsity_max)
