"""The radio's sections of the scenario: channel, link, mobility, energy; and their cross-field checks.

Every option defaults to the behaviour of the first radio (TR 36.814 macro law,
8 dB shadowing, Rayleigh fading i.i.d. across subchannels, Shannon rate, static
devices, per-client unicast downlink on the uplink's subchannels); the models and
their sources are documented in the ``channel`` package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .fields import setting


@dataclass(frozen=True)
class Channel:
    n_subchannels: int = setting(50, doc="uplink subchannels N (OFDMA, one client each)", gt=0)
    subchannel_bandwidth_hz: float = setting(180e3, doc="bandwidth of one subchannel, Hz "
                                                        "(180 kHz = one LTE resource block)", gt=0)
    carrier_hz: float = setting(2e9, doc="carrier frequency, Hz", gt=0)
    pathloss_model: Literal["log_distance", "uma", "umi"] = setting(
        "log_distance", doc="'log_distance': pathloss_intercept_db + pathloss_slope_db log10(d / 1 km) (TR 36.814 "
                            "macro); 'uma' / 'umi': 3GPP TR 38.901 Urban Macro / Urban Micro street canyon with LoS "
                            "probability, breakpoint distance and heights (Tables 7.4.1-1, 7.4.2-1)")
    pathloss_intercept_db: float = setting(128.1, doc="path loss at 1 km, dB (TR 36.814 macro; log_distance)")
    pathloss_slope_db: float = setting(37.6, doc="path loss per decade of distance, dB (log_distance)")
    bs_height_m: float | None = setting(
        None, doc="base-station antenna height, m (uma / umi); null: the table's 25 m (uma) or 10 m (umi)", gt=0)
    ut_height_m: float = setting(1.5, doc="device antenna height, m (uma: 1.5 to below 13; umi: 1.5 to 22.5)", gt=0)
    los: Literal["random", "los", "nlos"] = setting(
        "random", doc="LoS state of each device (uma / umi): drawn from P_LoS(d) ('random'), or forced")
    shadowing_std_db: float = setting(8.0, doc="log-normal shadowing standard deviation, dB (log_distance; 0: off)",
                                      ge=0)
    shadowing_std_los_db: float | None = setting(
        None, doc="shadowing standard deviation in LoS, dB (uma / umi); null: TR 38.901's 4 dB", ge=0)
    shadowing_std_nlos_db: float | None = setting(
        None, doc="shadowing standard deviation in NLoS, dB (uma / umi); null: TR 38.901's 6 dB (uma), 7.82 dB (umi)",
        ge=0)
    shadowing_decorrelation_m: float | None = setting(
        None, doc="decorrelation distance of the shadowing along a moving device's path and between devices "
                  "(correlated_shadowing), m; null: 50 m (log_distance, TR 36.814), TR 38.901 Table 7.5-6 by LoS "
                  "state (uma 37 / 50 m, umi 10 / 13 m; between devices the NLoS value)", gt=0)
    correlated_shadowing: bool = setting(
        False, doc="correlate the devices' shadowing by their distance apart, exp(-d / shadowing_decorrelation_m) "
                   "(Gudmundson); false: independent")
    fading: Literal["rayleigh", "none", "tdl"] = setting(
        "rayleigh", doc="small-scale fading: Rayleigh block fading independent on each subchannel, 'tdl' a TR 38.901 "
                        "tapped delay line that correlates the subchannels (tdl_profile, delay_spread_s), or none; "
                        "both Gauss-Markov across blocks")
    tdl_profile: Literal["TDL-A", "TDL-B", "TDL-C", "TDL-D", "TDL-E"] = setting(
        "TDL-C", doc="TR 38.901 Tables 7.7.2-1 to -5 (A-C NLoS, D-E with a LoS tap) (fading: tdl)")
    delay_spread_s: float = setting(
        100e-9, doc="RMS delay spread scaling the TDL's normalised delays, s (TR 38.901 Table 7.7.3-1: 10, 30, 100 "
                    "nominal, 300, 1000 ns)", ge=0)
    speed_mps: float = setting(0.8333, doc="client speed, m/s (3 km/h); sets the Doppler f_d = v f_c / c, and "
                                           "how fast devices move (mobility.model)", ge=0)
    coherence_s: float | None = setting(
        None, doc="fading block length, s; null: Clarke's 0.423 / f_d (about 76 ms at 3 km/h, 2 GHz)", gt=0)
    noise_psd_dbm_per_hz: float = setting(-174.0, doc="thermal noise power spectral density, dBm/Hz")
    bs_noise_figure_db: float = setting(5.0, doc="noise figure of the base-station receiver (uplink), dB", ge=0)
    device_noise_figure_db: float = setting(9.0, doc="noise figure of the device receiver (downlink), dB", ge=0)
    bs_power_dbm: float = setting(46.0, doc="base-station transmit power over all downlink subchannels, dBm")
    downlink_n_subchannels: int | None = setting(
        None, doc="downlink subchannels; null: the downlink uses each client's uplink subchannels (TDD reciprocity, "
                  "the same fading); a number: a separate band (FDD), dealt equally, with its own fading", gt=0)
    downlink_subchannel_bandwidth_hz: float | None = setting(
        None, doc="bandwidth of one downlink subchannel, Hz; null: subchannel_bandwidth_hz", gt=0)
    broadcast: Literal["unicast", "multicast"] = setting(
        "unicast", doc="the aggregate's broadcast: 'unicast' to each client on its own downlink subchannels, or "
                       "'multicast' once over the whole downlink band at the worst receiving client's rate")
    outside_cell: Literal["warn", "error"] = setting(
        "warn", doc="a fixed client distance outside [clients.min_distance_m, clients.cell_radius_m]: warn, or "
                    "refuse the scenario")


@dataclass(frozen=True)
class Link:
    rate_model: Literal["shannon", "shannon_capped", "mcs"] = setting(
        "shannon", doc="'shannon': B log2(1 + SINR); 'shannon_capped': TR 36.942 A.2, 0 below capped_min_sinr_db, "
                       "else min(capped_fraction log2(1 + SINR), capped_max_se) per Hz; 'mcs': TS 38.214 MCS table "
                       "with "
                       "SINR thresholds (5G-LENA curves), block errors and HARQ")
    capped_fraction: float = setting(0.6, doc="alpha, the fraction of Shannon (TR 36.942 Table A.2.1 downlink; "
                                              "uplink: 0.4)", gt=0, le=1)
    capped_max_se_bps_per_hz: float = setting(4.4, doc="largest spectral efficiency, bit/s/Hz (TR 36.942 downlink; "
                                                       "uplink: 2.0)", gt=0)
    capped_min_sinr_db: float = setting(-10.0, doc="SINR below which nothing is delivered, dB (TR 36.942)")
    mcs_table: Literal["qam64", "qam256"] = setting(
        "qam64", doc="TS 38.214 Table 5.1.3.1-1 (64QAM, MCS 0-28) or 5.1.3.1-2 (256QAM, MCS 0-27)")
    target_bler: float = setting(0.1, doc="block error rate the MCS choice aims at", gt=0, lt=1)
    harq_max_transmissions: int = setting(4, doc="HARQ transmissions of a transport block, the first included "
                                                 "(chase combining)", gt=0)
    slot_s: float = setting(1e-3, doc="transmission time interval, s (a 15 kHz NR slot)", gt=0)
    effective_sinr: Literal["eesm", "mean"] = setting(
        "eesm", doc="how a link's subchannel SINRs are combined to pick the MCS: EESM (beta per MCS from 5G-LENA) "
                    "or their mean")


@dataclass(frozen=True)
class Mobility:
    model: Literal["none", "constant_velocity", "random_waypoint"] = setting(
        "none", doc="'none': devices stay at their distance; 'constant_velocity': a straight line in a random "
                    "direction at channel.speed_mps, reflected at the cell edge; 'random_waypoint': straight walks "
                    "to points drawn uniformly in the cell, no pause. Distance, path loss, LoS state and shadowing "
                    "follow the position on every fading block")


@dataclass(frozen=True)
class Energy:
    compute_model: Literal["j_per_flop", "kappa"] = setting(
        "j_per_flop", doc="device compute energy: FLOPs x device_j_per_flop, or kappa x cycles x f^2 with cycles = "
                          "FLOPs / compute.client_flops_per_cycle and f the device clock")
    device_j_per_flop: float | tuple[float, ...] = setting(
        1e-11, doc="device energy per FLOP, J (one value, or one per client); 1e-11 = 10 W at the default "
                   "1 TFLOP/s effective", gt=0)
    kappa: float = setting(1e-28, doc="effective switched capacitance of the device's chip (kappa model; 1e-28, "
                                      "the usual value in wireless FL, e.g. Yang et al., IEEE TWC 2021)", gt=0)
    server_j_per_flop: float = setting(4e-12, doc="main and federated server energy per FLOP, J (4e-12 = a 400 W "
                                                  "A100 at the default 100 TFLOP/s)", gt=0)
    device_circuit_power_w: float = setting(0.0, doc="device transmitter circuit power while sending, W (added to "
                                                     "the transmit power)", ge=0)
    budget_j: float | tuple[float, ...] | None = setting(
        None, doc="per-device energy budget per round for the optimizer policies (compute + transmit), J (one "
                  "value, or one per client); null: none", gt=0)


def radio_problems(sc) -> list[str]:
    """Checks of the radio sections that involve several fields, as ``dotted.path: message`` lines."""
    from channel import tr38901

    problems = []
    ch, c, k = sc.channel, sc.clients, sc.clients.count
    distances = c.distances_m if (c.placement == "fixed" and isinstance(c.distances_m, tuple)) else ()
    if ch.outside_cell == "error":
        for i, d in enumerate(distances):
            if not c.min_distance_m <= d <= c.cell_radius_m:
                problems.append(f"clients.distances_m[{i}]: expected a distance in the cell, between "
                                f"clients.min_distance_m={c.min_distance_m:g} and clients.cell_radius_m="
                                f"{c.cell_radius_m:g} m (got {d:g}; channel.outside_cell: warn accepts it)")
    if ch.pathloss_model in tr38901.SCENARIOS:
        p = tr38901.params(ch.pathloss_model)
        keys = {"carrier_hz": "channel.carrier_hz", "bs_height_m": "channel.bs_height_m",
                "ut_height_m": "channel.ut_height_m", "min_distance_2d_m": "clients.min_distance_m",
                "max_distance_2d_m": "clients.cell_radius_m"}
        far = max([c.cell_radius_m, *distances])
        near = min([c.min_distance_m, *distances])
        if distances and c.placement == "fixed":
            keys.update(min_distance_2d_m="clients.distances_m", max_distance_2d_m="clients.distances_m")
            near, far = min(distances), max(distances)
        for key, message in tr38901.validity_problems(
                ch.pathloss_model, carrier_hz=ch.carrier_hz,
                bs_height_m=ch.bs_height_m if ch.bs_height_m is not None else p.bs_height_m,
                ut_height_m=ch.ut_height_m, min_distance_2d_m=near, max_distance_2d_m=far):
            problems.append(f"{keys[key]}: {message}")
    if sc.mobility.model != "none" and c.placement == "fixed" and any(d > c.cell_radius_m for d in distances):
        problems.append(f"clients.distances_m: expected distances within clients.cell_radius_m={c.cell_radius_m:g} m "
                        f"for moving devices (mobility.model={sc.mobility.model!r})")
    e = sc.energy
    for name, values in (("energy.device_j_per_flop", e.device_j_per_flop), ("energy.budget_j", e.budget_j)):
        if isinstance(values, tuple) and len(values) not in (1, k):
            problems.append(f"{name}: expected 1 or clients.count={k} values (got {len(values)})")
    dl = ch.downlink_n_subchannels
    if dl is not None and k > dl:
        problems.append(f"channel.downlink_n_subchannels: expected at least clients.count={k} subchannels, one per "
                        f"client (got {dl})")
    if ch.downlink_subchannel_bandwidth_hz is not None and dl is None:
        problems.append("channel.downlink_subchannel_bandwidth_hz: expected null unless channel.downlink_n_subchannels "
                        "is set (a separate downlink band)")
    return problems
