"""The FLOPs of a split step, measured on the real modules once per batch shape (a part of the trainer).

:class:`MeasuredSteps` is mixed into :class:`llm_split.trainer.SplitLoRATrainer`:
each phase is counted with :class:`llm_split.flops.FlopCounter` the first time it
runs on a shape (no extra compute), or, when the FLOPs are asked before a real
step of that shape completed, by a dry step of owner 0 that changes no weight,
gradient or random state.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

import torch

from llm_split.split import MIN_HEAD_ROWS
from llm_split.flops import (StepFlops, FlopCounter, analytic_lora_step_flops, first_block_frozen_input_weights,
                             matmul_weights)

PHASES = ("client_forward", "server_forward_backward", "client_backward")


class MeasuredSteps:
    """Per-shape FLOP counts of the three phases of a step (mixin; needs the trainer's parts and banks)."""

    def _init_measurements(self) -> None:
        self._flops: dict[tuple[int, int], StepFlops] = {}  # (B, T) -> measured FLOPs
        self._partial_flops: dict[tuple[int, int], dict[str, int]] = {}

    def step_flops(self, batch: Mapping[str, torch.Tensor]) -> StepFlops:
        """FLOPs of one step on a batch of this shape, measured with torch's counter.

        Measured on the real modules, attention included, once per (B, T): during
        the first real step of that shape, or -- if asked before one completed --
        by a step that changes no weight, gradient or random state.
        """
        shape = tuple(batch["input_ids"].shape)
        if shape not in self._flops:
            self._measure(batch)
        return self._flops[shape]

    def phase_flops(self, batch: Mapping[str, torch.Tensor], phase: str) -> float:
        """FLOPs of one phase (``client_forward``, ``server_forward_backward``, ``client_backward``).

        Right after that phase ran for the first time on this shape, its count is
        already known and no extra step is needed, unlike :meth:`step_flops`.
        """
        if phase not in PHASES:
            raise ValueError(f"phase(={phase!r}) must be one of {', '.join(PHASES)}")
        shape = tuple(batch["input_ids"].shape)
        if shape in self._flops:
            return getattr(self._flops[shape], phase)
        partial = self._partial_flops.get(shape, {})
        if phase in partial:
            return partial[phase]
        return getattr(self.step_flops(batch), phase)

    def analytic_step_flops(self, batch_size: int, seq_len: int, head_tokens: int | None = None) -> StepFlops:
        """The analytic estimate of :func:`llm_split.flops.analytic_lora_step_flops` for this split.

        ``head_tokens``: positions of the batch that carry a loss, where the LM head runs
        (:meth:`llm_split.split.ServerPart.label_loss`, at least ``MIN_HEAD_ROWS`` rows); None:
        every position.
        """
        config = self.model.config
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        head = self.server_part.lm_head.weight.numel()
        return analytic_lora_step_flops(
            batch_size=batch_size, seq_len=seq_len,
            client_weights=matmul_weights(self.client_part),
            server_weights=matmul_weights(self.server_part) - head,
            head_weights=head, head_tokens=None if head_tokens is None else max(head_tokens, MIN_HEAD_ROWS),
            client_lora_weights=self.client_bank.nbytes() // self.adapter_element_size(),
            server_lora_weights=self.server_bank.nbytes() // self.adapter_element_size(),
            client_layers=len(self.client_part.blocks), server_layers=len(self.server_part.blocks),
            attention_dim=config.num_attention_heads * head_dim,
            first_block_frozen_input_weights=first_block_frozen_input_weights(self.client_part),
        )

    @contextlib.contextmanager
    def _count(self, shape: tuple[int, int], phase: str):
        """Count the FLOPs of ``phase`` for this shape if not known yet (no extra compute)."""
        partial = self._partial_flops.get(shape, {})
        if shape in self._flops or phase in partial:
            yield
            return
        self._partial_flops[shape] = partial
        with FlopCounter() as counter:
            yield
        partial[phase] = counter.total
        if len(partial) == len(PHASES):
            self._flops[shape] = StepFlops(**partial)
            del self._partial_flops[shape]

    def _measure(self, batch: Mapping[str, torch.Tensor]) -> None:
        """A step of owner 0 that leaves no trace (weights, gradients, random state): only its FLOPs."""
        device = self._device()
        input_ids, mask, labels = (batch[k].to(device) for k in ("input_ids", "attention_mask", "labels"))
        params = [*self.client_bank.params[0].values(), *self.server_bank.params[0].values()]
        # backward(), as in a real step; the gradients it accumulates are put back.
        saved_grads = [p.grad for p in params]
        counts = {}
        try:
            with torch.random.fork_rng(devices=self._rng_devices()):  # dropout draws must not shift training's
                self.client_bank.bind(0)
                self.server_bank.bind(0)
                with FlopCounter() as counter:
                    hidden = self.client_part(input_ids, attention_mask=mask)
                counts["client_forward"] = counter.total
                received = hidden.detach().requires_grad_(True)
                with FlopCounter() as counter:
                    self.server_part.label_loss(received, mask, labels).backward()
                counts["server_forward_backward"] = counter.total
                with FlopCounter() as counter:
                    hidden.backward(received.grad)
                counts["client_backward"] = counter.total
        finally:
            for p, g in zip(params, saved_grads):
                p.grad = g
        self._flops[tuple(input_ids.shape)] = StepFlops(**counts)
        self._partial_flops.pop(tuple(input_ids.shape), None)
