"""Build each client's uplink and downlink from the scenario (the radio math lives in ``channel``)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

import channel

from .scenario import Scenario
from .scenario.schema import per_client
from .seeding import stream


@dataclass(frozen=True)
class ClientRadio:
    """One client's place in the cell and its links.

    Attributes
    ----------
    distance_m : float
        Distance to the base station, m.
    large_scale_gain_lin : float
        Path loss x shadowing as a linear power gain (< 1).
    subchannels : tuple of int
        Uplink subchannels the allocation gave this client.
    uplink_power_w : float
        The device's transmit power summed over its subchannels, W.
    downlink_power_w : float
        Base-station power on this client's subchannels, W.
    uplink, downlink : channel.RadioLink
        The links; the downlink reuses the client's fading (TDD reciprocity).
    """

    distance_m: float
    large_scale_gain_lin: float
    subchannels: tuple[int, ...]
    uplink_power_w: float
    downlink_power_w: float
    uplink: "channel.RadioLink"
    downlink: "channel.RadioLink"


def equal_subchannels(n_clients: int, n_subchannels: int) -> list[tuple[int, ...]]:
    """Deal N subchannels to K clients in contiguous blocks, sizes differing by at most one."""
    base, extra = divmod(n_subchannels, n_clients)
    out, start = [], 0
    for k in range(n_clients):
        size = base + (1 if k < extra else 0)
        out.append(tuple(range(start, start + size)))
        start += size
    return out


def fading_block_s(sc: Scenario) -> tuple[float, float]:
    """The fading block length (s) and the block-to-block correlation rho of the scenario."""
    ch = sc.channel
    f_d = channel.doppler_hz(ch.speed_mps, ch.carrier_hz)
    if ch.coherence_s is not None:
        block_s = ch.coherence_s
    elif f_d > 0:
        block_s = channel.coherence_time_s(f_d)
    else:
        return math.inf, 1.0  # a static channel: one block forever
    return block_s, float(channel.gauss_markov_rho(f_d, block_s))


def client_distances_m(sc: Scenario) -> np.ndarray:
    """Each client's distance: given, or dropped uniformly in the cell from its own stream."""
    c = sc.clients
    if c.placement == "fixed":
        return np.array([per_client(c.distances_m, k) for k in range(c.count)])
    return np.array([
        channel.drop_uniform_in_cell(stream(sc.seed, "placement", k), 1,
                                     radius_m=c.cell_radius_m, min_distance_m=c.min_distance_m)[0]
        for k in range(c.count)
    ])


def build_radio(sc: Scenario) -> list[ClientRadio]:
    """Place the clients, draw their large-scale gains and fading, and build their links."""
    ch, k_total = sc.channel, sc.clients.count
    block_s, rho = fading_block_s(sc)
    distances = client_distances_m(sc)
    allocation = equal_subchannels(k_total, ch.n_subchannels)
    bw = ch.subchannel_bandwidth_hz
    noise_up = channel.noise_power_w(bw, noise_figure_db=ch.bs_noise_figure_db,
                                     noise_psd_dbm_per_hz=ch.noise_psd_dbm_per_hz)
    device_power_w = channel.dbm_to_watt(sc.clients.max_power_dbm)
    bs_power_per_subchannel_w = channel.dbm_to_watt(ch.bs_power_dbm) / ch.n_subchannels
    radios = []
    for k in range(k_total):
        pl_db = channel.pathloss_db(distances[k], intercept_db=ch.pathloss_intercept_db,
                                    slope_db=ch.pathloss_slope_db)
        shadow_db = channel.draw_shadowing_db(stream(sc.seed, "shadowing", k), 1, std_db=ch.shadowing_std_db)[0]
        gain = float(channel.large_scale_gain_lin(pl_db, shadow_db))
        fading = channel.BlockFading(stream(sc.seed, "fading", k), ch.n_subchannels, block_s=block_s,
                                     rho=rho, enabled=ch.fading == "rayleigh")
        subs = allocation[k]
        up_power = channel.equal_power_w(device_power_w, len(subs))
        down_power = np.full(len(subs), bs_power_per_subchannel_w)
        uplink = channel.RadioLink(subchannels=subs, power_w=up_power, bandwidth_hz=bw,
                                   large_scale_gain_lin=gain, fading=fading, noise_power_w=noise_up)
        downlink = channel.RadioLink.downlink_from(uplink, power_w=down_power,
                                                   noise_figure_db=ch.device_noise_figure_db,
                                                   noise_psd_dbm_per_hz=ch.noise_psd_dbm_per_hz)
        radios.append(ClientRadio(
            distance_m=float(distances[k]), large_scale_gain_lin=gain, subchannels=subs,
            uplink_power_w=float(up_power.sum()), downlink_power_w=float(down_power.sum()),
            uplink=uplink, downlink=downlink,
        ))
    return radios


def with_uplink(radio: ClientRadio, sc: Scenario, subchannels, power_w) -> ClientRadio:
    """``radio`` with a new uplink allocation (subchannel indices, W on each); same fading and downlink.

    The downlink keeps its equal share of the band: an allocation policy decides
    the uplink only (the downlink is not optimised, as in the joint problem).
    """
    ch = sc.channel
    subs = tuple(int(n) for n in subchannels)
    power = np.asarray(power_w, dtype=float)
    noise_up = channel.noise_power_w(ch.subchannel_bandwidth_hz, noise_figure_db=ch.bs_noise_figure_db,
                                     noise_psd_dbm_per_hz=ch.noise_psd_dbm_per_hz)
    uplink = channel.RadioLink(subchannels=subs, power_w=power, bandwidth_hz=ch.subchannel_bandwidth_hz,
                               large_scale_gain_lin=radio.large_scale_gain_lin, fading=radio.uplink.fading,
                               noise_power_w=noise_up)
    return dataclasses.replace(radio, subchannels=subs, uplink_power_w=float(power.sum()), uplink=uplink)
