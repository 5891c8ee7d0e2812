"""Loading runs into pandas, and the analyses every user computes.

Runs write under ``results/`` by default (ignored by git); this package turns a
run folder into DataFrames.
"""

from .analysis import critical_path, phase_totals
from .load import Run, load_run

__all__ = ["Run", "critical_path", "load_run", "phase_totals"]
