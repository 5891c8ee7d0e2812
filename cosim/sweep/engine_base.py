"""What every sweep engine is: the names, the base class, the run function's type, a lazy import of an extra."""

from __future__ import annotations

import abc
import importlib
from pathlib import Path
from typing import Any, Callable

from ..errors import CosimError
from ..scenario import Scenario
from .book import SweepBook
from .expand import SweepRun

ENGINES = ("local", "dask", "slurm")
EXTRA_HINT = "pip install 'cosim[cluster]'"

RunFn = Callable[[Scenario, Path], dict]


class Engine(abc.ABC):
    """Runs a list of runs somewhere and reports each outcome to the book as it arrives."""

    name: str

    @abc.abstractmethod
    def execute(self, todo: list[SweepRun], book: SweepBook, run: RunFn) -> None:
        """Run ``run(scenario, book.target(r))`` for every ``r`` of ``todo`` through :func:`.book.execute`.

        Call ``book.finish(r, outcome)`` once per run as it finishes and ``book.show(n)``
        with the number in flight. On KeyboardInterrupt: submit nothing more, stop or cancel
        what has not finished, record the runs that finished successfully, re-raise.
        """


def require(engine: str, module: str) -> Any:
    """Import ``module`` for ``--engine engine``; a clear user error when the cluster extra is missing."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise CosimError(f"--engine {engine}: needs the cluster extra: {EXTRA_HINT}") from None


def check_engine_options(engine: str, scheduler: str | None) -> None:
    """Refuse an unknown engine, and ``--scheduler`` with an engine other than dask."""
    if engine not in ENGINES:
        raise CosimError(f"--engine: expected one of {', '.join(ENGINES)} (got {engine!r})")
    if scheduler is not None and engine != "dask":
        raise CosimError(f"--scheduler: only valid with --engine dask (got --engine {engine})")
