"""The real workload: split-LoRA steps of a real causal LM on real data (``llm_split``, torch).

Each call does the step for real and reports what it measured: FLOPs counted on
the real modules (cached per batch shape) and the bytes of the real tensors that
cross the cut. Importing this module imports torch; the engine never does.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from llm_split import SplitLoRATrainer, eval_batches
from llm_split.checkpoint import load_trainer_state, trainer_state
from llm_split.payload import CutMessage, ServerReply

from ..errors import NonFinite, ScenarioError
from ..scenario import Scenario
from ..seeding import stream_int
from ..workload import Evaluation, Step, StepCost, done
from .common import client_data, cuda_rng_state, load_model, lora_settings, set_cuda_rng_state
from .versions import AdapterVersions, fields_of, load_versions_state, versions_state


class SplitLoRAWorkload:
    """K clients' data and adapters around one :class:`llm_split.SplitLoRATrainer`.

    Parameters
    ----------
    trainer : llm_split.SplitLoRATrainer
        Per-client server-side adapters (SFL-V1) or one shared (SFL-V2, split learning).
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
        self.versions = AdapterVersions(self.n_clients, self._state, self._set_state)
        self.runtime: dict | None = None  # device, base dtype and threads, when built from a scenario

    @classmethod
    def from_scenario(cls, sc: Scenario) -> "SplitLoRAWorkload":
        """Load the model and the task, partition the data and set up the adapters of ``sc``."""
        import torch

        torch.manual_seed(stream_int(sc.seed, "torch"))
        model, tokenizer, n_layers, runtime = load_model(sc)
        if not 0 < sc.split.cut_layer < n_layers:
            raise ScenarioError([f"split.cut_layer: expected 0 < cut_layer < {n_layers} "
                                 f"(the blocks of {sc.model.name}) (got {sc.split.cut_layer})"])
        data = client_data(sc, tokenizer)
        trainer = SplitLoRATrainer(model, cut_layer=sc.split.cut_layer, lora=lora_settings(sc),
                                   n_clients=sc.clients.count, lr=sc.training.lr,
                                   weight_decay=sc.training.weight_decay, seed=stream_int(sc.seed, "lora"),
                                   server_adapters=server_adapters(sc), cut_dtype=sc.split.activation_dtype)
        workload = cls(trainer=trainer, encoder=data.encoder, task=data.task, client_indices=data.client_indices,
                       samplers=data.samplers, eval_batch_size=sc.training.eval_batch_size, rank=sc.lora.rank)
        workload.runtime = runtime
        return workload

    # -- the SplitWorkload contract ------------------------------------------------------------

    def sample_counts(self) -> list[int]:
        return [len(idx) for idx in self.client_indices]

    def client_forward(self, client: int) -> Step:
        idx = self.samplers[client].next_indices()
        batch = self.encoder.encode([self.task.train_texts[i] for i in idx], self.task.train_labels[idx])
        self._batches[client] = batch
        return self._forward(client)

    def _forward(self, client: int) -> Step:
        """The client forward on the batch drawn for ``client`` (kept in ``_batches``)."""
        batch = self._batches[client]

        def run() -> StepCost:
            self._messages[client] = msg = self.trainer.client_forward(client, batch)
            return StepCost(flops=flops, nbytes=msg.nbytes)

        flops = self.trainer.phase_flops(batch, "client_forward")
        return Step(flops=flops, run=run)

    def server_step(self, client: int) -> Step:
        def run() -> StepCost:
            reply = self.trainer.server_step(client, self._messages.pop(client))
            if not bool(reply.grad.isfinite().all()):
                raise NonFinite("the gradient sent down the cut is not finite")
            self._replies[client] = reply
            return StepCost(flops=flops, nbytes=reply.nbytes, loss=reply.loss)

        flops = self.trainer.phase_flops(self._batches[client], "server_forward_backward")
        return Step(flops=flops, run=run)

    def client_backward(self, client: int) -> Step:
        def run() -> StepCost:
            self.trainer.client_backward(client, self._replies.pop(client))
            self._batches.pop(client)
            return StepCost(flops=flops)

        flops = self.trainer.phase_flops(self._batches[client], "client_backward")
        return Step(flops=flops, run=run)

    def resume_step(self, name: str, client: int) -> Step:
        """The step ``name`` of ``client`` that started before a checkpoint and had not run: its batch was
        drawn then (``client_forward``), or it draws nothing when it starts (the server step, the backward)."""
        if name == "client_forward":
            return self._forward(client)
        if name in ("server_step", "client_backward"):
            return getattr(self, name)(client)
        raise ValueError(f"a {name} step cannot go on from a checkpoint")

    def adapter_upload(self, client: int) -> StepCost:
        return StepCost(nbytes=self.trainer.adapter_nbytes()["client"])

    def cancel(self, client: int) -> None:
        self.trainer.cancel(client)
        for pending in (self._batches, self._messages, self._replies):
            pending.pop(client, None)

    def aggregate(self, weights: Mapping[int, float]) -> Step:
        sizes = self.trainer.adapter_nbytes()
        if not weights:
            self.versions.reset_all()
            return done(StepCost(nbytes=sizes["client"]))

        def run() -> StepCost:
            self.trainer.fedavg(weights)
            self.versions.global_state = self._state(0)
            return StepCost(flops=flops, nbytes=sizes["client"])

        # A weighted average costs one multiply and one add per element per client, on both parts
        # (the client side only when the server-side adapter is shared).
        flops = 2.0 * len(weights) * self.versions.n_values
        return Step(flops=flops, run=run)

    def begin(self, client: int) -> None:
        self.versions.begin(client)

    def mix(self, client: int, weight: float) -> Step:
        def run() -> StepCost:
            self.versions.mix(self._state(client), weight)
            return StepCost(flops=flops, nbytes=self.trainer.adapter_nbytes()["client"])

        flops = 3.0 * self.versions.n_values  # (1 - w) g + w x: two multiplies and an add per value
        return Step(flops=flops, run=run)

    def buffer(self, client: int, key: int) -> None:
        self.versions.buffer(client, self._state(client), key)

    def apply_buffer(self, weights: Mapping[int, float]) -> Step:
        def run() -> StepCost:
            self.versions.apply_buffer(weights)
            return StepCost(flops=flops, nbytes=self.trainer.adapter_nbytes()["client"])

        flops = 2.0 * len(weights) * self.versions.n_values
        return Step(flops=flops, run=run)

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
        g = self.versions.global_state
        client = {k[len("client."):]: v for k, v in g.items() if k.startswith("client.")}
        server = {k[len("server."):]: v for k, v in g.items() if k.startswith("server.")} or None
        res = self.trainer.evaluate(self._eval, self.encoder.label_token_ids, client_state=client,
                                    server_state=server)
        return Evaluation(accuracy=float(res.accuracy), loss=float(res.loss), n=int(res.n))

    def global_state(self) -> dict:
        """A copy of the global adapter (``client.`` and, with per-client server adapters, ``server.`` keys)."""
        return {key: t.clone() for key, t in self.versions.global_state.items()}

    def state_dict(self) -> dict:
        """Everything a checkpoint needs to go on: adapters, AdamW states, batch streams, torch's generator,
        and (an asynchronous run's checkpoint) the steps in flight: batches, activations, gradients, the
        clients' base adapters and FedBuff's buffer."""
        import torch

        return {"trainer": trainer_state(self.trainer, in_flight=True), "rank": self.rank,
                "samplers": [s.state_dict() for s in self.samplers], "torch_rng": torch.get_rng_state(), **cuda_rng_state(),
                "global": self.versions.global_state, **versions_state(self.versions),
                "batches": dict(self._batches), "messages": {k: fields_of(m) for k, m in self._messages.items()},
                "replies": {k: fields_of(r) for k, r in self._replies.items()}}

    def load_state_dict(self, state: dict) -> None:
        import torch

        load_trainer_state(self.trainer, state["trainer"])
        for sampler, s in zip(self.samplers, state["samplers"]):
            sampler.load_state_dict(s)
        torch.set_rng_state(state["torch_rng"])
        set_cuda_rng_state(state)
        self.versions.global_state = dict(state["global"])
        load_versions_state(self.versions, state)
        self._batches = {int(k): b for k, b in state.get("batches", {}).items()}
        self._messages = {int(k): CutMessage(**m) for k, m in state.get("messages", {}).items()}
        self._replies = {int(k): ServerReply(**r) for k, r in state.get("replies", {}).items()}

    # -- internals ---------------------------------------------------------------------------------

    def _state(self, client: int) -> dict:
        """The adapter the federated server averages: client side, and the server-side copy under SFL-V1."""
        t = self.trainer
        out = {f"client.{k}": v for k, v in t.client_adapter_state(client).items()}
        if not t.shared_server:
            out.update({f"server.{k}": v for k, v in t.server_adapter_state(client).items()})
        return out

    def _set_state(self, client: int, state) -> None:
        t = self.trainer
        t.set_client_adapter_state(client, {k[len("client."):]: v for k, v in state.items() if k.startswith("client.")})
        if not t.shared_server:
            t.set_server_adapter_state(client, {k[len("server."):]: v for k, v in state.items()
                                                if k.startswith("server.")})


def server_adapters(sc: Scenario) -> str:
    """One server-side adapter per client (``split``, SFL-V1) or one shared (``sfl_v2``, ``sl``)."""
    return "per_client" if sc.strategy.name == "split" else "shared"
