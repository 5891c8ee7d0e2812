"""Loading runs into pandas, the analyses every user computes, and reports.

Runs write under ``results/`` by default (an output folder, ignored by git); this
package turns a run or sweep folder into DataFrames (``load_run``, ``load_sweep``),
analyses them (:mod:`cosim.analysis.analysis`) and writes figures with an index page
(``write_report``; matplotlib is imported only when a report is written). It lives
under ``cosim`` so that it imports from any folder, also one whose ``results/``
holds runs.
"""

from .analysis import (accuracy_vs_time, bytes_by_direction, client_round_delay, critical_path,
                       phase_time_per_client, phase_totals, round_critical_paths, wilson_interval)
from .load import Run, load_run
from .report import write_report
from .sweep import SweepResults, load_sweep

__all__ = [
    "Run", "SweepResults", "accuracy_vs_time", "bytes_by_direction", "client_round_delay", "critical_path",
    "load_run", "load_sweep", "phase_time_per_client", "phase_totals", "round_critical_paths", "wilson_interval",
    "write_report",
]
