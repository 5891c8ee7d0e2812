"""Figures of a run or a sweep (matplotlib, off-screen): one place to import them from.

Each function takes DataFrames and returns a :class:`matplotlib.figure.Figure`;
saving is the caller's business (:mod:`cosim.analysis.report`). The palette and
the shared helpers are in :mod:`cosim.analysis.style`; the figures in
:mod:`~cosim.analysis.run_plots`, :mod:`~cosim.analysis.tsfa_plots` and
:mod:`~cosim.analysis.sweep_plots`.
"""

from .run_plots import (STRIP_MAX_CLIENTS, THIN, WHOLE_RUN_ROUNDS, busy_rows, busy_time, critical_path_breakdown,
                        energy_per_device, event_durations, loss_accuracy, round_delay, timeline)
from .style import FED_SERVER, KIND_COLORS, kind_colors, save, short_label
from .sweep_plots import METRIC_AXES, sweep_param
from .tsfa_plots import is_tsfa, tsfa_rounds

__all__ = [
    "FED_SERVER", "KIND_COLORS", "METRIC_AXES", "STRIP_MAX_CLIENTS", "THIN", "WHOLE_RUN_ROUNDS", "busy_rows",
    "busy_time", "critical_path_breakdown", "energy_per_device", "event_durations", "is_tsfa", "kind_colors",
    "loss_accuracy", "round_delay", "save", "short_label", "sweep_param", "timeline", "tsfa_rounds",
]
