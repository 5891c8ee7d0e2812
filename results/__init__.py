"""Loading runs into pandas, and the analyses every user computes.

Runs write under ``results/`` by default (ignored by git); this package turns a
run folder into DataFrames.
"""

from .analysis import critical_path, phase_totals
from .load import Run, load_run
from .sweep import SweepResults, load_sweep

__all__ = ["Run", "SweepResults", "critical_path", "load_run", "load_sweep", "phase_totals"]
