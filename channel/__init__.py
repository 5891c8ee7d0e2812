"""channel: the radio model of cosim (NumPy and SciPy only; no SimPy, no torch).

Large scale: clients dropped in a cell (:mod:`channel.geometry`), path loss and
shadowing (:mod:`channel.pathloss`). Small scale: Rayleigh block fading,
Gauss-Markov across blocks (:mod:`channel.fading`). Rates: noise, SNR and
Shannon rate (:mod:`channel.rate`), power limits (:mod:`channel.power`), and a
link that turns bits into transfer times (:mod:`channel.link`). Closed forms to
check against: :mod:`channel.theory`. Units are in the names: ``_hz``, ``_w``,
``_dbm``, ``_db``, ``_lin``, ``_s``, ``_bps``, ``_m``.
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
from channel.geometry import drop_uniform_in_cell
from channel.link import RadioLink, Transfer
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
    # links
    "RadioLink",
    "Transfer",
    # closed forms
    "ergodic_rayleigh_capacity_bps_per_hz",
    "outage_probability",
    "jakes_autocorrelation",
    # errors
    "ChannelError",
    "PowerBudgetError",
    "TransferError",
]
