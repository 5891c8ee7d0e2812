"""The real workload: split-LoRA steps of a real causal LM on real data (``llm_split``, torch).

Each call does the step for real and reports what it measured: FLOPs counted on
the real modules (cached per batch shape) and the bytes of the real tensors that
cross the cut. Importing this module imports torch; the engine never does.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from llm_split import SplitLoRATrainer, eval_batches

from ..errors import ScenarioError
from ..scenario import Scenario
from ..seeding import stream_int
from ..workload import Evaluation, StepCost
from .common import client_data, load_model, lora_settings


class SplitLoRAWorkload:
    """K clients' data and adapters around one :class:`llm_split.SplitLoRATrainer`.

    Parameters
    ----------
    trainer : llm_split.SplitLoRATrainer
    encoder : llm_split.PromptEncoder
    task : llm_split.Task
    client_indices : list of np.ndarray
        Each client's training examples (indices into ``task.train_texts``).
    samplers : list of llm_split.ClientBatches
        Each client's batch sampler, on its own random stream.
    eval_batch_size : int
    rank : int
        The LoRA rank (reported in the cost table).
    """

    def __init__(self, *, trainer, encoder, task, client_indices, samplers, eval_batch_size: int, rank: int):
        self.trainer = trainer
        self.rank = rank
        self.encoder = encoder
        self.task = task
        self.client_indices = client_indices
        self.samplers = samplers
        self.n_clients = len(samplers)
        self._eval = eval_batches(encoder, task.test_texts, task.test_labels, batch_size=eval_batch_size)
        self._batches: dict[int, dict] = {}
        self._messages: dict[int, object] = {}
        self._replies: dict[int, object] = {}

    @classmethod
    def from_scenario(cls, sc: Scenario) -> "SplitLoRAWorkload":
        """Load the model and the task, partition the data and set up the adapters of ``sc``."""
        import torch

        torch.manual_seed(stream_int(sc.seed, "torch"))
        model, tokenizer, n_layers = load_model(sc)
        if not 0 < sc.split.cut_layer < n_layers:
            raise ScenarioError([f"split.cut_layer: expected 0 < cut_layer < {n_layers} "
                                 f"(the blocks of {sc.model.name}) (got {sc.split.cut_layer})"])
        data = client_data(sc, tokenizer)
        trainer = SplitLoRATrainer(model, cut_layer=sc.split.cut_layer, lora=lora_settings(sc),
                                   n_clients=sc.clients.count, lr=sc.training.lr,
                                   weight_decay=sc.training.weight_decay, seed=stream_int(sc.seed, "lora"))
        return cls(trainer=trainer, encoder=data.encoder, task=data.task, client_indices=data.client_indices,
                   samplers=data.samplers, eval_batch_size=sc.training.eval_batch_size, rank=sc.lora.rank)

    # -- the SplitWorkload contract ------------------------------------------------------------

    def sample_counts(self) -> list[int]:
        return [len(idx) for idx in self.client_indices]

    def client_forward(self, client: int) -> StepCost:
        idx = self.samplers[client].next_indices()
        batch = self.encoder.encode([self.task.train_texts[i] for i in idx], self.task.train_labels[idx])
        msg = self.trainer.client_forward(client, batch)
        self._batches[client], self._messages[client] = batch, msg
        return StepCost(flops=self.trainer.phase_flops(batch, "client_forward"), nbytes=msg.nbytes)

    def server_step(self, client: int) -> StepCost:
        reply = self.trainer.server_step(client, self._messages.pop(client))
        self._replies[client] = reply
        flops = self.trainer.phase_flops(self._batches[client], "server_forward_backward")
        return StepCost(flops=flops, nbytes=reply.nbytes, loss=reply.loss)

    def client_backward(self, client: int) -> StepCost:
        self.trainer.client_backward(client, self._replies.pop(client))
        return StepCost(flops=self.trainer.phase_flops(self._batches.pop(client), "client_backward"))

    def adapter_upload(self, client: int) -> StepCost:
        return StepCost(nbytes=self.trainer.adapter_nbytes()["client"])

    def aggregate(self, weights: Mapping[int, float]) -> StepCost:
        self.trainer.fedavg(weights)
        sizes = self.trainer.adapter_nbytes()
        # A weighted average costs one multiply and one add per element per client, on both parts.
        n_elements = (sizes["client"] + sizes["server"]) / self.trainer.adapter_element_size()
        return StepCost(flops=2.0 * len(weights) * n_elements, nbytes=sizes["client"])

    def cost_table(self) -> dict:
        # A throwaway step (no weight, gradient or random state changes) measures this shape's FLOPs.
        idx = np.arange(min(self.samplers[0].batch_size, len(self.task.train_texts)))
        batch = self.encoder.encode([self.task.train_texts[i] for i in idx], self.task.train_labels[idx])
        flops = self.trainer.step_flops(batch)
        msg_bytes = self.trainer.cut_message_nbytes(batch)
        return {
            "cuts": np.array([self.trainer.cut_layer]), "ranks": np.array([self.rank]),
            "client_forward_flops": np.array([[flops.client_forward]]),
            "client_backward_flops": np.array([[flops.client_backward]]),
            "server_flops": np.array([[flops.server_forward_backward]]),
            "activation_bytes": np.array([float(msg_bytes["activation"])]),
            "gradient_bytes": np.array([float(msg_bytes["gradient"])]),
            "client_adapter_bytes": np.array([[float(self.trainer.adapter_nbytes()["client"])]]),
        }

    def evaluate(self) -> Evaluation:
        res = self.trainer.evaluate(self._eval, self.encoder.label_token_ids)
        return Evaluation(accuracy=float(res.accuracy), loss=float(res.loss), n=int(res.n))

