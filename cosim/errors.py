"""The project's exceptions.

Every error a user can cause (a bad scenario, flag or file, an infeasible
problem) derives from :class:`CosimError`; the CLI prints its message and exits
with status 2. Anything else is an internal bug and keeps its traceback.

This module imports nothing heavy so that ``channel``, ``solver`` and
``llm_split`` can raise project errors without importing SimPy or torch.
"""

from __future__ import annotations


class CosimError(Exception):
    """Base class of every user-facing error of the project."""


class ScenarioError(CosimError):
    """A scenario (or a ``--set`` override) is invalid.

    Parameters
    ----------
    problems : list of str
        One line per problem, each ``file: dotted.path: what was expected (got X)``.
    """

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def __reduce__(self):  # survive pickling across a process pool
        return (type(self), (self.problems,))


class InfeasibleError(CosimError):
    """An optimisation problem has no solution; the message names the constraint."""


class RunStopped(CosimError):
    """A run stopped before its end (a non-finite loss or gradient): the CLI exits with status 1.

    ``where`` says the round, client and step; the trace up to then is kept in a folder marked incomplete.
    """

    exit_status = 1

    def __init__(self, message: str, where: dict | None = None):
        self.where = dict(where or {})
        # both in args: SimPy re-raises a process's exception as type(e)(*e.args)
        super().__init__(message, self.where)

    def __str__(self) -> str:
        return str(self.args[0])


class NonFinite(ArithmeticError):
    """Raised by a workload's step when a tensor it made (a gradient) is not finite; the clock adds where."""
