"""A workload's answers to the engine, logged; going on from a checkpoint, read back from the log.

An asynchronous run has no moment when every client is between two updates:
whenever the server takes an update, other clients are half-way through theirs
(a transfer in flight, a step waiting for a server slot). SimPy processes cannot
be saved, so a checkpoint of such a run keeps the workload's state *and* the log
of every answer the workload gave the engine (each step's FLOPs when it started,
each step's bytes and loss when its work ran, each held-out evaluation). Going
on, the engine runs again from time 0 with :class:`LoggedWorkload` answering
from the log without doing any work: the clock, the radio's draws, the strategy
and the trace are rebuilt exactly, event for event, in a fraction of the time.
When the log runs out (at the checkpoint's very moment) the workload, loaded
from the checkpoint, does the work again; the steps that were in flight then
run for real from the state the checkpoint kept (their batches, activations and
gradients).

Every call read back is checked against the log (same method, same client and
arguments): a resumed run that would diverge from the one that wrote the
checkpoint stops with an internal error instead of writing a different trace.
"""

from __future__ import annotations

import numbers
from typing import Mapping

from .workload import Evaluation, Step, StepCost, Upload

STEPS = frozenset({"client_forward", "server_step", "client_backward", "local_step", "aggregate", "mix",
                   "apply_buffer"})
VALUES = frozenset({"adapter_upload", "upload", "evaluate"})
ACTIONS = frozenset({"begin", "buffer", "cancel"})


def _scalar(a):
    """A number as Python's own int or float (NumPy's scalars do not load with ``weights_only``)."""
    if isinstance(a, numbers.Integral):
        return int(a)
    if isinstance(a, numbers.Real):
        return float(a)
    return a


def _plain(args: tuple) -> list:
    """Call arguments as plain, comparable data (a weights mapping as sorted pairs)."""
    out = []
    for a in args:
        if isinstance(a, Mapping):
            out.append(sorted((int(k), float(v)) for k, v in a.items()))
        else:
            out.append(_scalar(a))
    return out


def _cost(cost: StepCost) -> list:
    return [float(cost.flops), int(cost.nbytes), None if cost.loss is None else float(cost.loss)]


def _value_out(name: str, value) -> list | None:
    if name == "evaluate":
        return value.fields()
    if name == "upload":
        return [int(value.nbytes), float(value.sparsity)]
    if name == "adapter_upload":
        return _cost(value)
    return None


def _value_in(name: str, saved: list):
    if name == "evaluate":
        return Evaluation.from_fields(saved)
    if name == "upload":
        return Upload(nbytes=saved[0], sparsity=saved[1])
    if name == "adapter_upload":
        return StepCost(flops=saved[0], nbytes=saved[1], loss=saved[2])
    return None


class LogDiverged(RuntimeError):
    """A resumed run asked its workload something else than the run that wrote the checkpoint (a bug)."""


class LoggedWorkload:
    """``inner``, with every answer it gives the engine logged; with ``replay``, the first answers read back.

    Parameters
    ----------
    inner : workload
        The real (or replay) workload; during the read-back its state is the checkpoint's, and no call
        reaches it except attributes that do not change it (sizes, counts, cached FLOPs).
    replay : list, optional
        A checkpoint's log (:attr:`log`), to read back before doing any work.

    Attributes
    ----------
    log : list
        Entries ``["call", name, args, answer]`` and ``["run", name, args, [flops, nbytes, loss]]``
        in the order the engine made them (plain data, for ``torch.save``).
    """

    def __init__(self, inner, replay: list | None = None):
        self.__dict__["_inner"] = inner
        self.log: list = list(replay or [])
        self._end = len(self.log)   # entries to read back
        self._at = 0                # the next one

    @property
    def inner(self):
        return self._inner

    @property
    def replaying(self) -> bool:
        """Whether answers still come from the log."""
        return self._at < self._end

    def __getattr__(self, name: str):
        if name in STEPS:
            return lambda *args: self._step(name, args)
        if name in VALUES:
            return lambda *args: self._value(name, args)
        if name in ACTIONS:
            return lambda *args: self._action(name, args)
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value) -> None:
        if name in ("log", "_end", "_at"):
            self.__dict__[name] = value
        else:
            setattr(self._inner, name, value)

    # -- reading back --------------------------------------------------------------------------------

    def _next(self, kind: str, name: str, args: list) -> list:
        entry = self.log[self._at]
        if entry[0] != kind or entry[1] != name or entry[2] != args:
            raise LogDiverged(f"the resumed run diverged from its checkpoint at log entry {self._at}: "
                              f"expected {entry[:3]}, got {[kind, name, args]}")
        self._at += 1
        return entry[3]

    # -- the three kinds of calls --------------------------------------------------------------------

    def _action(self, name: str, args: tuple) -> None:
        plain = _plain(args)
        if self.replaying:
            self._next("call", name, plain)
            return
        getattr(self._inner, name)(*args)
        self.log.append(["call", name, plain, None])

    def _value(self, name: str, args: tuple):
        plain = _plain(args)
        if self.replaying:
            return _value_in(name, self._next("call", name, plain))
        value = getattr(self._inner, name)(*args)
        self.log.append(["call", name, plain, _value_out(name, value)])
        return value

    def _step(self, name: str, args: tuple) -> Step:
        plain = _plain(args)
        if self.replaying:
            flops = self._next("call", name, plain)
            return Step(flops=flops, run=lambda: self._run(name, args, plain, None, flops))
        step = getattr(self._inner, name)(*args)
        self.log.append(["call", name, plain, float(step.flops)])
        return Step(flops=step.flops, run=lambda: self._run(name, args, plain, step, step.flops))

    def _run(self, name: str, args: tuple, plain: list, step: Step | None, flops: float) -> StepCost:
        if self.replaying:
            saved = self._next("run", name, plain)
            return StepCost(flops=saved[0], nbytes=saved[1], loss=saved[2])
        if step is None:  # started before the checkpoint, its work not yet run: the workload kept its inputs
            step = self._inner.resume_step(name, *args)
            if step.flops != flops:
                raise LogDiverged(f"{name}{tuple(args)}: {step.flops} FLOPs going on, {flops} in the log")
        cost = step.run()
        self.log.append(["run", name, plain, _cost(cost)])
        return cost
