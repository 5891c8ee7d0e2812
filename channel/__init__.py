"""channel: the radio model of cosim (NumPy and SciPy only; no SimPy, no torch).

Large scale: clients dropped in a cell (:mod:`channel.geometry`), path loss and
shadowing (:mod:`channel.pathloss`; the laws a scenario picks,
:mod:`channel.pathloss_models`: TR 36.814 log-distance or TR 38.901 UMa / UMi,
:mod:`channel.tr38901`), shadowing correlated between devices
(:mod:`channel.shadowing`), devices that move (:mod:`channel.mobility`) and the
gain along their path (:mod:`channel.largescale`). Small scale: Rayleigh block
fading, Gauss-Markov across blocks (:mod:`channel.fading`), or a TR 38.901
tapped delay line that correlates the subchannels (:mod:`channel.tdl`). Rates:
noise, SNR and Shannon rate (:mod:`channel.rate`), the capped Shannon bound and
MCS tables (:mod:`channel.linkmodel`, :mod:`channel.mcs_tables`) with block
errors and HARQ (:mod:`channel.harq`), power limits (:mod:`channel.power`), a
link that turns bits into transfer times (:mod:`channel.link`), a multicast
(:mod:`channel.multicast`), and energy (:mod:`channel.energy`). Closed forms to
check against: :mod:`channel.theory`. Units are in the names: ``_hz``, ``_w``,
``_dbm``, ``_db``, ``_lin``, ``_s``, ``_bps``, ``_m``, ``_j``.
"""

from channel.errors import ChannelError, PowerBudgetError, TransferError
from channel.fading import (
    SPEED_OF_LIGHT_MPS,
    BlockFading,
    coherence_time_s,
    doppler_hz,
    gauss_markov_rho,
    rayleigh_gauss_markov,
)
from channel.energy import compute_energy_j, kappa_j_per_flop, transmit_energy_j
from channel.geometry import drop_uniform_in_cell
from channel.largescale import LargeScale
from channel.link import RadioLink
from channel.linkmodel import CappedShannon, Mcs, Shannon
from channel.mcs_tables import mcs_table
from channel.mobility import ConstantVelocity, RandomWaypoint, Static, start_position_m
from channel.multicast import MulticastLink
from channel.pathloss_models import LogDistance, Tr38901
from channel.shadowing import correlated_normals
from channel.tdl import TdlFading
from channel.transfer import Transfer
from channel.pathloss import draw_shadowing_db, large_scale_gain_lin, pathloss_db
from channel.power import check_power_budget, equal_power_w
from channel.rate import noise_power_w, shannon_rate_bps, snr_lin
from channel.theory import ergodic_rayleigh_capacity_bps_per_hz, jakes_autocorrelation, outage_probability
from channel.units import db_to_lin, dbm_to_watt, lin_to_db, watt_to_dbm

__all__ = [
    # units
    "db_to_lin",
    "lin_to_db",
    "dbm_to_watt",
    "watt_to_dbm",
    # geometry and large-scale gain
    "drop_uniform_in_cell",
    "pathloss_db",
    "draw_shadowing_db",
    "large_scale_gain_lin",
    # noise, SNR, rate, power
    "noise_power_w",
    "snr_lin",
    "shannon_rate_bps",
    "equal_power_w",
    "check_power_budget",
    # small-scale fading
    "SPEED_OF_LIGHT_MPS",
    "doppler_hz",
    "coherence_time_s",
    "gauss_markov_rho",
    "rayleigh_gauss_markov",
    "BlockFading",
    "TdlFading",
    # large scale: laws, mobility, correlated shadowing
    "LogDistance",
    "Tr38901",
    "LargeScale",
    "Static",
    "ConstantVelocity",
    "RandomWaypoint",
    "start_position_m",
    "correlated_normals",
    # links and rate models
    "RadioLink",
    "MulticastLink",
    "Transfer",
    "Shannon",
    "CappedShannon",
    "Mcs",
    "mcs_table",
    # energy
    "compute_energy_j",
    "kappa_j_per_flop",
    "transmit_energy_j",
    # closed forms
    "ergodic_rayleigh_capacity_bps_per_hz",
    "outage_probability",
    "jakes_autocorrelation",
    # errors
    "ChannelError",
    "PowerBudgetError",
    "TransferError",
]
