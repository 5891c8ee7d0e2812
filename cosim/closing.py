"""How a synchronous round closes: at a barrier, at a deadline, or when the first K have finished.

- ``barrier``: wait for every selected client.
- ``deadline``: close at the round's start + ``deadline_s``, or when every client
  is done if that comes first. A client whose adapter upload has not finished by
  then is cut (its process interrupted; the step in flight is in the trace,
  marked) and left out of the round's average. A client finishing exactly at
  the deadline is in.
- over-selection (FedScale's over-commitment): more clients are selected than
  needed; the round closes as soon as the ``needed`` first have finished, and
  the rest are cut (an optional deadline applies too).

:func:`close_round` is a SimPy process body shared by every strategy.
"""

from __future__ import annotations

from dataclasses import dataclass

import simpy


@dataclass(frozen=True)
class Closed:
    """The result of a round's closing: the clients in the average (in the order they finished),
    every client's outcome, and what closed the round (``"barrier"``, ``"deadline"``, ``"over_selection"``,
    or ``"all_done"`` when every client ended before a deadline or a quota closed it)."""

    included: list[int]
    outcomes: dict
    closed_by: str


def close_round(env: simpy.Environment, procs: dict[int, simpy.Process], finished: list[int], *,
                deadline_at_s: float | None = None, needed: int | None = None, mode: str = "barrier"):
    """Wait until the round closes, cut the clients still working, and return :class:`Closed`.

    ``procs``: each selected client's process (values :class:`cosim.steps.Outcome`);
    ``finished``: the list the processes append to as they finish (the order of finishing);
    ``deadline_at_s``: absolute time of the deadline; ``needed``: close after this many finished.
    """
    deadline = env.timeout(deadline_at_s - env.now) if deadline_at_s is not None else None
    reason = None
    while True:
        alive = [p for p in procs.values() if p.is_alive]
        if not alive:
            break
        if needed is not None and len(finished) >= needed:
            reason = "over_selection"
            break
        yield env.any_of(alive + ([deadline] if deadline is not None else []))
        if deadline is not None and deadline.processed:
            yield env.timeout(0)  # clients finishing exactly at the deadline finish first
            if needed is not None and len(finished) >= needed:
                reason = "over_selection"
            else:
                reason = "deadline"
            break
    cut = [k for k, p in procs.items() if p.is_alive]
    for k in cut:
        procs[k].interrupt(reason)
    if cut:
        yield env.all_of([procs[k] for k in cut])
    included = finished[:needed] if needed is not None else list(finished)
    closed_by = reason if cut else ("barrier" if mode == "barrier" else "all_done")
    return Closed(included=included, outcomes={k: p.value for k, p in procs.items()}, closed_by=closed_by)
