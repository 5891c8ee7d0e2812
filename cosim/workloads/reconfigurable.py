"""The real workload whose cut and rank an allocation policy may change between rounds.

:class:`ReconfigurableSplitLoRAWorkload` is :class:`SplitLoRAWorkload` plus
``configure(cut=, rank=)``: the trainer is rebuilt by
:func:`llm_split.reconfigure.reconfigure`, which carries every client's adapters
and AdamW moments over (a new cut is exact; a new rank pads or re-factors the
adapters by a truncated SVD, see that module). Importing this module imports torch.
"""

from __future__ import annotations

import dataclasses

from llm_split import LoraSettings
from llm_split.reconfigure import reconfigure

from ..scenario import Scenario
from ..seeding import stream_int
from .split_lora import SplitLoRAWorkload
from .versions import AdapterVersions


class ReconfigurableSplitLoRAWorkload(SplitLoRAWorkload):
    """:class:`SplitLoRAWorkload` with :meth:`configure` (and its current ``cut``)."""

    lora: LoraSettings
    seed: int

    @classmethod
    def from_scenario(cls, sc: Scenario) -> "ReconfigurableSplitLoRAWorkload":
        workload = super().from_scenario(sc)
        kwargs = dict(rank=sc.lora.rank, alpha=sc.lora.alpha, dropout=sc.lora.dropout)
        if sc.lora.target_modules is not None:
            kwargs["target_modules"] = tuple(sc.lora.target_modules)
        workload.lora = LoraSettings(**kwargs)
        workload.seed = stream_int(sc.seed, "lora", "reconfigure")
        return workload

    @property
    def cut(self) -> int:
        """The current cut (blocks on the client)."""
        return self.trainer.cut_layer

    def load_state_dict(self, state: dict) -> None:
        """Continue from a checkpoint: at its cut and rank first, then its adapters and optimizer states."""
        self.configure(cut=state["trainer"]["cut"], rank=state["rank"])
        super().load_state_dict(state)

    def configure(self, *, cut: int, rank: int) -> None:
        """Continue training cut at ``cut`` with rank ``rank`` (no-op if they are the current ones)."""
        if (cut, rank) == (self.cut, self.rank):
            return
        self.trainer = reconfigure(self.trainer, cut=cut, lora=self.lora, rank=rank, seed=self.seed)
        self.versions = AdapterVersions(self.n_clients, self._state, self._set_state)  # at a round's start
        self.lora = dataclasses.replace(self.lora, rank=rank)
        self.rank = rank
