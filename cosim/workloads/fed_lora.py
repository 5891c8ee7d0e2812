"""Federated LoRA without a split (the second paper's setting): dense FedLoRA, SOFT, top-k, random-k.

Every client trains the adapters of the whole model on its own device for the
round's local steps, then uploads them, whole or sparsified; the server merges
the uploads into the global adapter and broadcasts it. Steps run for real on
the real model (``llm_split``): each client's step is the split trainer's three
phases back to back on the device, which computes exactly the unsplit model's
loss and gradients (see ``llm_split.split``), so the FLOPs and the adapter are
those of the whole model; the cut is internal bookkeeping only.

Strategies (``strategy.name``):

- ``fedlora``: the whole adapter, dense.
- ``soft`` and ``tsfa``: the near-orthogonality regulariser
  ``lambda (||A A^T - I||^2 + ||B^T B - I||^2)`` on every LoRA module during
  local training, and the upload keeps the ``ceil((1 - rho) r)`` rank
  components of largest ``||b_j|| ||a_j||`` per module (:func:`llm_split.sparsify.soft_select`).
- ``topk`` / ``randomk``: the largest / uniformly random ``ceil((1 - rho) n)``
  entries of each tensor's change since the last broadcast.

Bytes are those sent: values x element size + index overhead
(:class:`llm_split.sparsify.Selection`). The server's rule for values a client
did not send is ``strategy.missing`` (:func:`llm_split.aggregate.merge`);
``strategy.aggregation: product`` averages ``B A`` instead of the factors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import numpy as np

from llm_split import SplitLoRATrainer, eval_batches
from llm_split.aggregate import average_product, complete, merge
from llm_split.checkpoint import load_trainer_state, trainer_state
from llm_split.ortho import add_ortho_grads, lora_pairs
from llm_split.sparsify import Selection, dense_selection, randomk_select, soft_select, topk_select

from ..errors import NonFinite
from ..scenario import Scenario
from ..seeding import stream_int
from ..workload import Evaluation, Step, StepCost, Upload, done
from .common import client_data, cuda_rng_state, load_model, lora_settings, set_cuda_rng_state
from .versions import AdapterVersions, fields_of, load_versions_state, versions_state

if TYPE_CHECKING:
    import torch

_SIDES = ("client", "server")


class FedLoRAWorkload:
    """K clients' whole-model adapters, their local steps, uploads and the server's merge.

    Parameters
    ----------
    trainer : llm_split.SplitLoRATrainer
        Per-client adapters and AdamW states; its two parts together are the whole model.
    data : cosim.workloads.common.ClientData
    strategy : str
        ``fedlora``, ``soft``, ``topk``, ``randomk`` or ``tsfa``.
    ortho_weight : float
        lambda of the regulariser (soft and tsfa only).
    aggregation : {"factors", "product"}
    missing : {"unchanged", "senders"}
    seed : int
        Seeds random-k's choices (per round and client).
    eval_batch_size : int
    """

    def __init__(self, *, trainer: SplitLoRATrainer, data, strategy: str, ortho_weight: float, aggregation: str,
                 missing: str, seed: int, eval_batch_size: int):
        self.trainer = trainer
        self.data = data
        self.strategy = strategy
        self.aggregation = aggregation
        self.missing = missing
        self.seed = seed
        self.n_clients = trainer.n_clients
        self.rank = trainer_rank(trainer)
        self.ortho_weight = ortho_weight if strategy in ("soft", "tsfa") else 0.0
        if self.ortho_weight > 0:
            trainer.before_step = lambda side, client, params: add_ortho_grads(params, self.ortho_weight)
        self._eval = eval_batches(data.encoder, data.task.test_texts, data.task.test_labels,
                                  batch_size=eval_batch_size)
        self.versions = AdapterVersions(self.n_clients, self._state, self._set_state)
        self._uploads: dict[int, tuple[dict, object]] = {}
        self._batches: dict[int, dict] = {}
        self._round = 0
        self._step_flops: float | None = None
        self.runtime: dict | None = None  # device, base dtype and threads, when built from a scenario

    @classmethod
    def from_scenario(cls, sc: Scenario, *, rank: int | None = None) -> "FedLoRAWorkload":
        """Load the model and the task of ``sc``; ``rank`` overrides ``lora.rank`` (TSFA's offline choice)."""
        import torch

        torch.manual_seed(stream_int(sc.seed, "torch"))
        model, tokenizer, n_layers, runtime = load_model(sc)
        data = client_data(sc, tokenizer)
        trainer = SplitLoRATrainer(model, cut_layer=internal_cut(n_layers), lora=lora_settings(sc, rank),
                                   n_clients=sc.clients.count, lr=sc.training.lr,
                                   weight_decay=sc.training.weight_decay, seed=stream_int(sc.seed, "lora"))
        st = sc.strategy
        workload = cls(trainer=trainer, data=data, strategy=st.name, ortho_weight=st.ortho_weight,
                       aggregation=st.aggregation, missing=st.missing, seed=sc.seed,
                       eval_batch_size=sc.training.eval_batch_size)
        workload.runtime = runtime
        return workload

    # -- the FedWorkload contract --------------------------------------------------------------

    def sample_counts(self) -> list[int]:
        return [len(idx) for idx in self.data.client_indices]

    def local_step(self, client: int) -> Step:
        idx = self.data.samplers[client].next_indices()
        self._batches[client] = self.data.encoder.encode([self.data.task.train_texts[i] for i in idx],
                                                         self.data.task.train_labels[idx])
        return self._local(client)

    def _local(self, client: int) -> Step:
        """The local step on the batch drawn for ``client`` (kept in ``_batches`` until it runs)."""
        batch = self._batches[client]
        t = self.trainer

        def run() -> StepCost:
            del self._batches[client]
            reply = t.server_step(client, t.client_forward(client, batch))
            if not bool(reply.grad.isfinite().all()):
                raise NonFinite("a gradient of the local step is not finite")
            t.client_backward(client, reply)
            return StepCost(flops=flops, loss=reply.loss)

        flops = sum(t.phase_flops(batch, phase) for phase in
                    ("client_forward", "server_forward_backward", "client_backward")) + self._regulariser_flops()
        return Step(flops=flops, run=run)

    def resume_step(self, name: str, client: int) -> Step:
        """The local step of ``client`` that started before a checkpoint and had not run (its batch drawn)."""
        if name != "local_step":
            raise ValueError(f"a {name} step cannot go on from a checkpoint")
        return self._local(client)

    def upload(self, client: int, sparsity: float) -> Upload:
        state = self._state(client)
        base = self.versions.base_of(client)
        name = self.strategy
        if name == "fedlora" or (sparsity == 0 and name in ("soft", "tsfa")):
            sel = dense_selection(state)
        elif name in ("soft", "tsfa"):
            sel = soft_select(state, sparsity)
        elif name == "topk":
            sel = topk_select(state, base, sparsity)
        elif name == "randomk":
            sel = randomk_select(state, sparsity, stream_int(self.seed, "randomk", self._round, client))
        else:  # pragma: no cover - the scenario schema admits no other name
            raise ValueError(f"strategy {name!r} has no upload")
        self._uploads[client] = (state, sel)
        return Upload(nbytes=sel.nbytes, sparsity=sel.sparsity)

    def cancel(self, client: int) -> None:
        self.trainer.cancel(client)
        self._uploads.pop(client, None)
        self._batches.pop(client, None)

    def aggregate(self, weights: Mapping[int, float]) -> Step:
        if not weights:
            self.versions.reset_all()
            self._uploads.clear()
            self._round += 1
            return done(StepCost(nbytes=self.dense_nbytes()))
        clients = sorted(weights)
        missing = [k for k in clients if k not in self._uploads]
        if missing:
            raise ValueError(f"aggregate before the uploads of clients {missing}")

        def run() -> StepCost:
            g = self.versions.global_state
            states = [self._uploads[k][0] for k in clients]
            sels = [self._uploads[k][1] for k in clients]
            w = [weights[k] for k in clients]
            if self.aggregation == "factors":
                new = merge(g, states, sels, w, rule=self.missing)
            else:
                completed = [complete(g, sd, sel) for sd, sel in zip(states, sels)]
                new = average_product(completed, w, rank=self.rank)
            self.versions.set_global({key: t.clone() for key, t in new.items()})
            self._uploads.clear()
            self._round += 1
            return StepCost(flops=flops, nbytes=self.dense_nbytes())

        n_values = self.versions.n_values
        if self.aggregation == "factors":
            flops = 2.0 * len(clients) * n_values  # one multiply and one add per value per client
        else:
            flops = self._product_flops(len(clients))
        return Step(flops=flops, run=run)

    def begin(self, client: int) -> None:
        self.versions.begin(client)

    def mix(self, client: int, weight: float) -> Step:
        def run() -> StepCost:
            self.versions.mix(self._received(client), weight)
            return StepCost(flops=flops, nbytes=self.dense_nbytes())

        flops = 3.0 * self.versions.n_values  # (1 - w) g + w x: two multiplies and an add per value
        return Step(flops=flops, run=run)

    def buffer(self, client: int, key: int) -> None:
        self.versions.buffer(client, self._received(client), key)

    def apply_buffer(self, weights: Mapping[int, float]) -> Step:
        def run() -> StepCost:
            self.versions.apply_buffer(weights)
            return StepCost(flops=flops, nbytes=self.dense_nbytes())

        flops = 2.0 * len(weights) * self.versions.n_values
        return Step(flops=flops, run=run)

    def evaluate(self) -> Evaluation:
        g = self.versions.global_state
        res = self.trainer.evaluate(self._eval, self.data.encoder.label_token_ids,
                                    client_state={k[len("client."):]: v for k, v in g.items() if k.startswith("client.")},
                                    server_state={k[len("server."):]: v for k, v in g.items() if k.startswith("server.")})
        return Evaluation(accuracy=float(res.accuracy), loss=float(res.loss), n=int(res.n))

    def step_flops(self) -> float:
        if self._step_flops is None:
            b = self.data.samplers[0].batch_size
            idx = np.arange(min(b, len(self.data.task.train_texts)))
            batch = self.data.encoder.encode([self.data.task.train_texts[i] for i in idx],
                                             self.data.task.train_labels[idx])
            f = self.trainer.step_flops(batch)
            self._step_flops = (f.client_forward + f.server_forward_backward + f.client_backward
                                + self._regulariser_flops())
        return self._step_flops

    def dense_nbytes(self) -> int:
        return dense_selection(self.versions.global_state).nbytes

    def global_state(self) -> dict[str, torch.Tensor]:
        """A copy of the global adapter (``client.`` / ``server.``-prefixed keys)."""
        return {key: t.clone() for key, t in self.versions.global_state.items()}

    def state_dict(self) -> dict:
        """Everything a checkpoint needs to go on: adapters, AdamW states, batch streams, torch's generator,
        and (an asynchronous run's checkpoint) the batches of steps in flight, the uploads the server has not
        taken yet, the clients' base adapters and FedBuff's buffer."""
        import torch

        return {"trainer": trainer_state(self.trainer), "samplers": [s.state_dict() for s in self.data.samplers],
                "torch_rng": torch.get_rng_state(), **cuda_rng_state(), "global": self.versions.global_state,
                "round": self._round, **versions_state(self.versions), "batches": dict(self._batches),
                "uploads": {k: [state, fields_of(sel)] for k, (state, sel) in self._uploads.items()}}

    def load_state_dict(self, state: dict) -> None:
        import torch

        load_trainer_state(self.trainer, state["trainer"])
        for sampler, s in zip(self.data.samplers, state["samplers"]):
            sampler.load_state_dict(s)
        torch.set_rng_state(state["torch_rng"])
        set_cuda_rng_state(state)
        self.versions.global_state = dict(state["global"])
        self._round = int(state["round"])
        load_versions_state(self.versions, state)
        self._batches = {int(k): b for k, b in state.get("batches", {}).items()}
        self._uploads = {int(k): (dict(u[0]), Selection(**u[1])) for k, u in state.get("uploads", {}).items()}

    # -- internals ---------------------------------------------------------------------------------

    def _state(self, client: int) -> dict[str, torch.Tensor]:
        t = self.trainer
        return {**{f"client.{k}": v for k, v in t.client_adapter_state(client).items()},
                **{f"server.{k}": v for k, v in t.server_adapter_state(client).items()}}

    def _set_state(self, client: int, state: Mapping[str, torch.Tensor]) -> None:
        for side, setter in zip(_SIDES, (self.trainer.set_client_adapter_state, self.trainer.set_server_adapter_state)):
            prefix = f"{side}."
            setter(client, {key[len(prefix):]: v for key, v in state.items() if key.startswith(prefix)})

    def _received(self, client: int) -> dict[str, torch.Tensor]:
        """What the server reconstructs from the client's upload: the values it sent, the others from the
        global adapter the client started from (asynchronous modes)."""
        state, sel = self._uploads.pop(client)
        return complete(self.versions.base_of(client), state, sel)

    def _regulariser_flops(self) -> float:
        return regulariser_flops(self.versions.global_state) if self.ortho_weight else 0.0

    def _product_flops(self, n_clients: int) -> float:
        """Averaging B A without forming it (:func:`llm_split.aggregate.average_product`), an estimate.

        With R = K r stacked components per module: two Householder QRs of the stacked
        factors and forming their Q (about ``4 (d_in + d_out) R^2``), the R x R core
        (``2 R^3``) and its SVD (``22 R^3``, Golub and Van Loan), and the rank-r factors
        (``2 r R (d_in + d_out)``). Counted, not measured.
        """
        total = 0.0
        for r, d_in, d_out in module_shapes(self.versions.global_state):
            big_r = n_clients * r
            total += 4 * (d_in + d_out) * big_r ** 2 + 24 * big_r ** 3 + 2 * r * big_r * (d_in + d_out)
        return total


def internal_cut(n_layers: int) -> int:
    """Where the whole-model trainer splits its bookkeeping (any valid cut gives the same step)."""
    return max(1, n_layers // 2)


def trainer_rank(trainer: SplitLoRATrainer) -> int:
    """The LoRA rank of a trainer's adapters (rows of any lora_A)."""
    state = trainer.client_adapter_state(0)
    return int(next(t.shape[0] for key, t in state.items() if ".lora_A." in key))


def measure_ranks(sc: Scenario, ranks) -> dict[int, tuple[float, int]]:
    """rank -> (FLOPs of one local step, bytes of the dense adapter), measured on the real model at each rank.

    One fresh model and a one-client trainer per rank; the step is measured without
    changing any weight (:meth:`llm_split.SplitLoRATrainer.step_flops`).
    """
    from llm_split.payload import state_dict_nbytes

    out = {}
    data = None
    for rank in sorted(set(int(r) for r in ranks)):
        model, tokenizer, n_layers, _ = load_model(sc)
        if data is None:
            data = client_data(sc, tokenizer)
            b = min(sc.training.batch_size, len(data.task.train_texts))
            batch = data.encoder.encode(list(data.task.train_texts[:b]), data.task.train_labels[:b])
        trainer = SplitLoRATrainer(model, cut_layer=internal_cut(n_layers), lora=lora_settings(sc, rank),
                                   n_clients=1, lr=sc.training.lr, seed=stream_int(sc.seed, "lora"))
        f = trainer.step_flops(batch)
        state = {**{f"client.{k}": v for k, v in trainer.client_adapter_state(0).items()},
                 **{f"server.{k}": v for k, v in trainer.server_adapter_state(0).items()}}
        reg = regulariser_flops(state) if sc.strategy.name in ("soft", "tsfa") and sc.strategy.ortho_weight else 0.0
        out[rank] = (f.client_forward + f.server_forward_backward + f.client_backward + reg, state_dict_nbytes(state))
    return out


def module_shapes(state: Mapping[str, torch.Tensor]) -> list[tuple[int, int, int]]:
    """(r, d_in, d_out) of every LoRA module of an adapter state."""
    out = []
    for a_key, b_key in lora_pairs(state).values():
        r, d_in = state[a_key].shape
        out.append((r, d_in, state[b_key].shape[0]))
    return out


def regulariser_flops(state: Mapping[str, torch.Tensor]) -> float:
    """The regulariser's gradient per step: A A^T and (A A^T - I) A, 2 r^2 d each, per factor."""
    return float(sum(4 * r * r * (d_in + d_out) for r, d_in, d_out in module_shapes(state)))
