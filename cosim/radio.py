"""Build each client's uplink and downlink from the scenario (the radio math lives in ``channel``).

Random streams (``cosim.seeding.stream(seed, name, k)``), one per client and
consumer, so that adding a client never changes another's draws: ``placement``
(distance), ``azimuth`` (angle, for mobility and correlated shadowing),
``shadowing``, ``los``, ``mobility`` (heading or waypoints), ``track``
(shadowing and LoS innovations along a path), ``fading`` (uplink; the downlink's
with TDD reciprocity), ``fading_down`` (a separate downlink band),
``block_errors_up`` / ``block_errors_down`` (rate model ``mcs``), and
``multicast_errors`` (one for the cell).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass

import numpy as np

import channel

from .scenario import Scenario
from .scenario.schema import per_client
from .seeding import stream


class OutsideCellWarning(UserWarning):
    """A fixed client distance lies outside the cell (``channel.outside_cell: warn``)."""


@dataclass(frozen=True)
class ClientRadio:
    """One client's place in the cell and its links.

    Attributes
    ----------
    distance_m : float
        Distance to the base station at the start, m.
    large_scale_gain_lin : float
        Path loss x shadowing as a linear power gain (< 1), at the start.
    subchannels : tuple of int
        Uplink subchannels the allocation gave this client.
    uplink_power_w : float
        The device's transmit power summed over its subchannels, W.
    downlink_power_w : float
        Base-station power on this client's downlink subchannels, W.
    uplink, downlink : channel.RadioLink
        The links; the downlink reuses the client's fading (TDD reciprocity) unless
        ``channel.downlink_n_subchannels`` gives it a band of its own.
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


def pathloss_model(sc: Scenario) -> "channel.pathloss_models.PathlossModel":
    """The scenario's path-loss law (``channel.pathloss_model``)."""
    ch = sc.channel
    if ch.pathloss_model == "log_distance":
        return channel.LogDistance(ch.pathloss_intercept_db, ch.pathloss_slope_db, ch.shadowing_std_db,
                                   50.0 if ch.shadowing_decorrelation_m is None else ch.shadowing_decorrelation_m)
    p = channel.tr38901.params(ch.pathloss_model)
    return channel.Tr38901(ch.pathloss_model, ch.carrier_hz,
                           p.bs_height_m if ch.bs_height_m is None else ch.bs_height_m, ch.ut_height_m,
                           ch.shadowing_std_los_db, ch.shadowing_std_nlos_db, ch.shadowing_decorrelation_m)


def rate_model(sc: Scenario) -> "channel.linkmodel.RateModel | None":
    """The scenario's rate model (``link.rate_model``); None for Shannon (the links' default)."""
    ln = sc.link
    if ln.rate_model == "shannon_capped":
        return channel.CappedShannon(ln.capped_fraction, ln.capped_max_se_bps_per_hz, ln.capped_min_sinr_db)
    if ln.rate_model == "mcs":
        return channel.Mcs(ln.mcs_table, ln.target_bler, ln.harq_max_transmissions, ln.slot_s, ln.effective_sinr)
    return None


def _fading(sc: Scenario, rng, n: int, bandwidth_hz: float, block_s: float, rho: float):
    ch = sc.channel
    if ch.fading == "tdl":
        return channel.TdlFading(rng, n, block_s=block_s, rho=rho, profile=ch.tdl_profile,
                                 delay_spread_s=ch.delay_spread_s, subchannel_bandwidth_hz=bandwidth_hz)
    return channel.BlockFading(rng, n, block_s=block_s, rho=rho, enabled=ch.fading == "rayleigh")


def _warn_outside_cell(sc: Scenario, distances: np.ndarray) -> None:
    c = sc.clients
    if c.placement != "fixed" or sc.channel.outside_cell != "warn":
        return
    out = [k for k, d in enumerate(distances) if not c.min_distance_m <= d <= c.cell_radius_m]
    if out:
        warnings.warn(f"clients.distances_m: clients {out} lie outside the cell ({c.min_distance_m:g} to "
                      f"{c.cell_radius_m:g} m): distances {[float(distances[k]) for k in out]} (set "
                      f"channel.outside_cell: error to refuse)", OutsideCellWarning, stacklevel=2)


def large_scale_tracks(sc: Scenario, distances: np.ndarray, block_s: float) -> list["channel.LargeScale"]:
    """Each client's large-scale gain over time: position, LoS state and shadowing (module docstring streams)."""
    ch, c, k_total = sc.channel, sc.clients, sc.clients.count
    model = pathloss_model(sc)
    mob = sc.mobility.model
    starts = [channel.start_position_m(float(distances[k]), 2 * math.pi * stream(sc.seed, "azimuth", k).random())
              for k in range(k_total)]
    z = np.array([stream(sc.seed, "shadowing", k).standard_normal(1)[0] for k in range(k_total)])
    if ch.correlated_shadowing:
        z = channel.correlated_normals(z, np.array(starts), float(model.shadowing_decorrelation_m(False)))
    tracks = []
    for k in range(k_total):
        if mob == "none" or ch.speed_mps == 0.0:
            path = channel.Static(starts[k], distance_m=float(distances[k]))
        elif mob == "constant_velocity":
            heading = 2 * math.pi * stream(sc.seed, "mobility", k).random()
            path = channel.ConstantVelocity(starts[k], ch.speed_mps, heading_rad=heading, radius_m=c.cell_radius_m)
        else:
            path = channel.RandomWaypoint(starts[k], ch.speed_mps, rng=stream(sc.seed, "mobility", k),
                                          radius_m=c.cell_radius_m, min_distance_m=c.min_distance_m)
        moving = not path.is_static
        tracks.append(channel.LargeScale(
            model=model, trajectory=path, block_s=block_s if moving else math.inf,
            # A static device keeps its given distance (as before); a moving one is held at r0 and beyond.
            min_distance_m=c.min_distance_m if moving else 0.0, shadowing_z=float(z[k]),
            los_z=float(stream(sc.seed, "los", k).standard_normal()), los_mode=ch.los,
            rng=stream(sc.seed, "track", k) if moving else None))
    return tracks


def build_radio(sc: Scenario) -> list[ClientRadio]:
    """Place the clients, draw their large-scale gains and fading, and build their links."""
    ch, k_total = sc.channel, sc.clients.count
    block_s, rho = fading_block_s(sc)
    block_s = block_s if math.isfinite(block_s) else 1.0  # rho = 1: every block is the same
    distances = client_distances_m(sc)
    _warn_outside_cell(sc, distances)
    tracks = large_scale_tracks(sc, distances, block_s)
    allocation = equal_subchannels(k_total, ch.n_subchannels)
    bw = ch.subchannel_bandwidth_hz
    noise_up = channel.noise_power_w(bw, noise_figure_db=ch.bs_noise_figure_db,
                                     noise_psd_dbm_per_hz=ch.noise_psd_dbm_per_hz)
    device_power_w = channel.dbm_to_watt(sc.clients.max_power_dbm)
    n_down = ch.n_subchannels if ch.downlink_n_subchannels is None else ch.downlink_n_subchannels
    bs_power_per_subchannel_w = channel.dbm_to_watt(ch.bs_power_dbm) / n_down
    model = rate_model(sc)
    random_errors = model is not None and model.random
    radios = []
    for k in range(k_total):
        track = tracks[k]
        gain = track.gain_lin(0)
        moving = None if track.is_static else track
        fading = _fading(sc, stream(sc.seed, "fading", k), ch.n_subchannels, bw, block_s, rho)
        subs = allocation[k]
        up_power = channel.equal_power_w(device_power_w, len(subs))
        uplink = channel.RadioLink(
            subchannels=subs, power_w=up_power, bandwidth_hz=bw, large_scale_gain_lin=gain, fading=fading,
            noise_power_w=noise_up, rate_model=model, large_scale=moving, distance_m=float(distances[k]),
            error_rng=stream(sc.seed, "block_errors_up", k) if random_errors else None,
            circuit_power_w=sc.energy.device_circuit_power_w)
        down_errors = stream(sc.seed, "block_errors_down", k) if random_errors else None
        if ch.downlink_n_subchannels is None:
            down_power = np.full(len(subs), bs_power_per_subchannel_w)
            downlink = channel.RadioLink.downlink_from(uplink, power_w=down_power,
                                                       noise_figure_db=ch.device_noise_figure_db,
                                                       noise_psd_dbm_per_hz=ch.noise_psd_dbm_per_hz,
                                                       error_rng=down_errors)
        else:
            downlink = _separate_downlink(sc, k, track, gain, float(distances[k]), model, down_errors, block_s, rho)
            down_power = downlink.power_w
        radios.append(ClientRadio(
            distance_m=float(distances[k]), large_scale_gain_lin=gain, subchannels=subs,
            uplink_power_w=float(up_power.sum()), downlink_power_w=float(down_power.sum()),
            uplink=uplink, downlink=downlink,
        ))
    return radios


def _downlink_band(sc: Scenario) -> tuple[int, float]:
    ch = sc.channel
    n = ch.n_subchannels if ch.downlink_n_subchannels is None else ch.downlink_n_subchannels
    bw = ch.downlink_subchannel_bandwidth_hz or ch.subchannel_bandwidth_hz
    return n, bw


def _separate_downlink(sc, k, track, gain, distance_m, model, errors, block_s, rho) -> "channel.RadioLink":
    """Client k's downlink on its equal share of a separate downlink band (FDD), with fading of its own."""
    ch = sc.channel
    n, bw = _downlink_band(sc)
    subs = equal_subchannels(sc.clients.count, n)[k]
    fading = _fading(sc, stream(sc.seed, "fading_down", k), n, bw, block_s, rho)
    power = np.full(len(subs), channel.dbm_to_watt(ch.bs_power_dbm) / n)
    noise = channel.noise_power_w(bw, noise_figure_db=ch.device_noise_figure_db,
                                  noise_psd_dbm_per_hz=ch.noise_psd_dbm_per_hz)
    return channel.RadioLink(subchannels=subs, power_w=power, bandwidth_hz=bw, large_scale_gain_lin=gain,
                             fading=fading, noise_power_w=noise, rate_model=model, error_rng=errors,
                             large_scale=None if track.is_static else track, distance_m=distance_m)


def multicast_link(sc: Scenario, radios: list[ClientRadio]) -> "channel.MulticastLink":
    """The broadcast over the whole downlink band to every client (``channel.broadcast: multicast``).

    Each client's link spans all downlink subchannels with the base station's
    power spread evenly over them; with TDD (no separate downlink band) it sees
    the client's uplink fading on every subchannel.
    """
    ch = sc.channel
    n, bw = _downlink_band(sc)
    power = np.full(n, channel.dbm_to_watt(ch.bs_power_dbm) / n)
    noise = channel.noise_power_w(bw, noise_figure_db=ch.device_noise_figure_db,
                                  noise_psd_dbm_per_hz=ch.noise_psd_dbm_per_hz)
    links = [r.downlink.with_allocation(range(n), power, bandwidth_hz=bw, noise_power_w=noise) for r in radios]
    model = rate_model(sc)
    errors = stream(sc.seed, "multicast_errors") if model is not None and model.random else None
    return channel.MulticastLink(links, error_rng=errors)


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
    uplink = radio.uplink.with_allocation(subs, power, bandwidth_hz=ch.subchannel_bandwidth_hz, noise_power_w=noise_up)
    return dataclasses.replace(radio, subchannels=subs, uplink_power_w=float(power.sum()), uplink=uplink)
