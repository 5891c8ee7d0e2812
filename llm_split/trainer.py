"""Split federated LoRA training: one step as three messages, and FedAvg of the adapters.

A step of client k (FedsLLM, the split-learning round of SplitFed):

    client_forward(k, batch) -> CutMessage    device: embeddings + blocks [0, s)
    server_step(k, message)  -> ServerReply   main server: blocks [s, L) + head,
                                              forward, backward, optimizer step
    client_backward(k, reply)                 device: backward, optimizer step

Each client has its own LoRA adapter on both sides of the cut and its own AdamW
per side (:class:`llm_split.bank.AdapterBank`: one frozen base model, one PEFT
adapter slot, each client's weights swapped in), so steps of different clients
may interleave freely: client_forward(0), client_forward(1), server_step(1),
server_step(0), client_backward(1), client_backward(0) gives what running the
clients one after the other gives. :meth:`SplitLoRATrainer.fedavg` then
averages the adapters and gives every client the average (SFL-V1).

Between a client's forward and its backward its graph is kept for at most
``graphs_kept`` clients at once; another client's graph is dropped after its
forward and the forward is run again, bit for bit (the same weights, inputs
and random state), just before its backward (activation recomputation, as
``torch.utils.checkpoint``). With many clients in flight at once -- the main
server's queue holds them -- memory stays that of a few graphs; the measured
FLOPs are those of the step, not of the recomputation.

The main server computes the LM head only at the positions that carry a loss
(:meth:`llm_split.split.ServerPart.label_loss`).

With ``server_adapters="shared"`` the main server keeps one server-side adapter
and one AdamW for all clients (SFL-V2, and vanilla split learning): each
server step updates it, so the order of the server steps is the training order,
and :meth:`SplitLoRATrainer.fedavg` averages the client side only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from cosim.errors import CosimError
from llm_split import compress, lora as lora_mod
from llm_split.bank import AdapterBank
from llm_split.evaluate import EvalResult, evaluate_label_token
from llm_split.measure import MeasuredSteps
from llm_split.payload import CutMessage, ServerReply, tensor_nbytes
from llm_split.split import split_causal_lm


@dataclass
class _Flight:
    """A client's step between its forward and its backward: the output with its graph, or what
    recomputes it (inputs and the random state the forward started from)."""

    hidden: torch.Tensor | None  # (B, T, H) with its graph; None once the graph is dropped
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    rng_states: list[torch.Tensor]


class SplitLoRATrainer(MeasuredSteps):
    """Per-client LoRA adapters on both parts of a split causal LM.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        The causal LM, modified in place: frozen, LoRA injected, train mode. Its
        device and dtype are those of the steps; the adapters are float32.
    cut_layer : int
        Blocks run on the client, ``0 < cut_layer < num_layers``.
    lora : LoraSettings
        Rank, alpha, dropout, target modules.
    n_clients : int
        Number of clients, 0 .. n_clients-1.
    lr, weight_decay : float
        AdamW settings, the same for every client and side.
    seed : int
        Seed of the adapters' initialisation; every client starts from the same
        weights. Dropout (if any) draws from torch's global generator.
    server_adapters : {"per_client", "shared"}
        One server-side adapter (and AdamW) per client, or one shared by all.
    cut_dtype : str
        How the activations and their gradient cross the cut (:mod:`llm_split.compress`):
        ``"float32"`` as computed, or a 16-bit or int8 encoding that the receiver decodes.
    graphs_kept : int
        Most clients whose forward graph is kept until their backward; the others'
        forwards are recomputed at their backward (same result, less memory).
    """

    SERVER_ADAPTERS = ("per_client", "shared")

    def __init__(self, model: nn.Module, *, cut_layer: int, lora: lora_mod.LoraSettings, n_clients: int,
                 lr: float, weight_decay: float = 0.0, seed: int = 0, server_adapters: str = "per_client",
                 cut_dtype: str = "float32", graphs_kept: int = 4):
        problems = []
        if isinstance(n_clients, bool) or not isinstance(n_clients, int) or n_clients < 1:
            problems.append(f"n_clients(={n_clients!r}) must be an integer >= 1")
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
            problems.append(f"lr(={lr!r}) must be > 0")
        if not isinstance(weight_decay, (int, float)) or not weight_decay >= 0:
            problems.append(f"weight_decay(={weight_decay!r}) must be >= 0")
        if server_adapters not in self.SERVER_ADAPTERS:
            problems.append(f"server_adapters(={server_adapters!r}) must be one of {', '.join(self.SERVER_ADAPTERS)}")
        if isinstance(graphs_kept, bool) or not isinstance(graphs_kept, int) or graphs_kept < 0:
            problems.append(f"graphs_kept(={graphs_kept!r}) must be an integer >= 0")
        if problems:
            raise CosimError("; ".join(problems))
        self.model = model
        self.n_clients = n_clients
        self.cut_layer = cut_layer
        self.cut_dtype = compress.check_cut_dtype(cut_dtype)
        self.shared_server = server_adapters == "shared"
        self.graphs_kept = graphs_kept
        model.requires_grad_(False)
        self.client_part, self.server_part = split_causal_lm(model, cut_layer)
        config = lora.peft_config(model.config.model_type)
        with torch.random.fork_rng(devices=[]):  # seeded init without moving the caller's generator
            torch.manual_seed(seed)
            lora_mod.add_adapters(self.client_part, config, [lora_mod.SLOT])
            # The server side's initial adapter is drawn after one client-side adapter per client,
            # as when each client had a PEFT adapter of its own (same weights as then).
            lora_mod.skip_adapter_draws(self.client_part, lora_mod.SLOT, n_clients - 1)
            lora_mod.add_adapters(self.server_part, config, [lora_mod.SLOT])
        model.train()  # LoRA dropout (if any) is on while training
        common = dict(lr=lr, weight_decay=weight_decay)
        self.client_bank = AdapterBank(self.client_part, n_owners=n_clients, **common)
        self.server_bank = AdapterBank(self.server_part, n_owners=1 if self.shared_server else n_clients, **common)
        # Called as before_step(side, client, params) after a step's backward and before its AdamW
        # step, with that side's adapter parameters of that client (e.g. to add a regulariser's gradient).
        self.before_step: Callable[[str, int, Mapping[str, nn.Parameter]], None] | None = None
        self._in_flight: dict[int, _Flight] = {}
        self._init_measurements()

    # -- one step, as messages ------------------------------------------------

    def client_forward(self, client: int, batch: Mapping[str, torch.Tensor]) -> CutMessage:
        """Run the client part on a batch with client ``client``'s adapter.

        ``batch`` holds ``input_ids``, ``attention_mask`` and ``labels``, each
        (B, T). The graph is kept for :meth:`client_backward` (or recomputed then).
        """
        self._check_client(client)
        if client in self._in_flight:
            raise ValueError(f"client {client} already has a step in flight; call client_backward first")
        device = self._device()
        input_ids, mask, labels = (batch[k].to(device) for k in ("input_ids", "attention_mask", "labels"))
        rng_states = self._rng_states()
        self.client_bank.bind(client)
        with self._count(tuple(input_ids.shape), "client_forward"):
            hidden = self.client_part(input_ids, attention_mask=mask)  # (B, T, H)
        kept = sum(f.hidden is not None for f in self._in_flight.values()) < self.graphs_kept
        self._in_flight[client] = _Flight(hidden if kept else None, input_ids, mask, rng_states)
        sent, sent_nbytes = compress.roundtrip(hidden.detach(), self.cut_dtype)  # as the server decodes it
        return CutMessage(hidden=sent, attention_mask=mask, labels=labels,
                          nbytes=sent_nbytes + tensor_nbytes(mask) + tensor_nbytes(labels))

    def server_step(self, client: int, message: CutMessage) -> ServerReply:
        """Server forward, backward and AdamW step with client ``client``'s server-side adapter."""
        self._check_client(client)
        owner = self._server_owner(client)
        self.server_bank.bind(owner)
        # A fresh leaf: the server's graph starts at the received activations.
        hidden = message.hidden.detach().requires_grad_(True)  # (B, T, H)
        with self._count(tuple(hidden.shape[:2]), "server_forward_backward"):
            loss = self.server_part.label_loss(hidden, message.attention_mask, message.labels)
            loss.backward()
        self._before_step("server", client)
        optimizer = self.server_bank.optimizers[owner]
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        grad, grad_nbytes = compress.roundtrip(hidden.grad, self.cut_dtype)  # as the client decodes it
        return ServerReply(loss=loss.item(), grad=grad, nbytes=grad_nbytes)

    def client_backward(self, client: int, reply: ServerReply) -> None:
        """Backpropagate the cut gradient through client ``client``'s graph; AdamW step."""
        self._check_client(client)
        if client not in self._in_flight:
            raise ValueError(f"client {client} has no step in flight; call client_forward first")
        flight = self._in_flight.pop(client)
        hidden = flight.hidden
        if hidden is None:  # recompute the forward exactly: same weights, inputs and dropout draws
            self.client_bank.bind(client)
            with torch.random.fork_rng(devices=self._rng_devices()):
                self._set_rng_states(flight.rng_states)
                hidden = self.client_part(flight.input_ids, attention_mask=flight.attention_mask)
        with self._count(tuple(hidden.shape[:2]), "client_backward"):
            hidden.backward(reply.grad.to(hidden.device))
        self._before_step("client", client)
        optimizer = self.client_bank.optimizers[client]
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def cancel(self, client: int) -> None:
        """Forget client ``client``'s step in flight, if any (its chain was cut before the backward)."""
        self._check_client(client)
        self._in_flight.pop(client, None)

    def use(self, client: int) -> None:
        """Make both parts (hence the unsplit model) compute with client ``client``'s adapters."""
        self._check_client(client)
        self.client_bank.bind(client)
        self.server_bank.bind(self._server_owner(client))

    # -- adapters -------------------------------------------------------------

    def client_parameters(self, client: int) -> dict[str, nn.Parameter]:
        """Client ``client``'s client-side LoRA weights themselves (keys as :meth:`client_adapter_state`)."""
        self._check_client(client)
        return self.client_bank.params[client]

    def server_parameters(self, client: int) -> dict[str, nn.Parameter]:
        """The server-side LoRA weights the main server uses for client ``client`` (the shared ones under SFL-V2)."""
        self._check_client(client)
        return self.server_bank.params[self._server_owner(client)]

    def client_optimizer(self, client: int) -> torch.optim.AdamW:
        """Client ``client``'s AdamW on the client side."""
        self._check_client(client)
        return self.client_bank.optimizers[client]

    def server_optimizer(self, client: int) -> torch.optim.AdamW:
        """The AdamW of the server-side adapter client ``client`` uses."""
        self._check_client(client)
        return self.server_bank.optimizers[self._server_owner(client)]

    def client_adapter_state(self, client: int) -> dict[str, torch.Tensor]:
        """Copy of client ``client``'s client-side LoRA weights (keys like ``blocks.0.self_attn.q_proj.lora_A.weight``)."""
        self._check_client(client)
        return self.client_bank.state(client)

    def server_adapter_state(self, client: int) -> dict[str, torch.Tensor]:
        """Copy of the server-side LoRA weights that the main server uses for client ``client`` (the shared ones
        under SFL-V2)."""
        self._check_client(client)
        return self.server_bank.state(self._server_owner(client))

    def set_client_adapter_state(self, client: int, state: Mapping[str, torch.Tensor]) -> None:
        """Overwrite client ``client``'s client-side LoRA weights (keys as in :meth:`client_adapter_state`)."""
        self._check_client(client)
        self.client_bank.load(client, state)

    def set_server_adapter_state(self, client: int, state: Mapping[str, torch.Tensor]) -> None:
        """Overwrite the server-side LoRA weights kept for client ``client`` (the shared ones under SFL-V2)."""
        self._check_client(client)
        self.server_bank.load(self._server_owner(client), state)

    def adapter_nbytes(self) -> dict[str, int]:
        """Bytes of one client's adapter on each side: ``{"client": ..., "server": ...}``."""
        return {"client": self.client_bank.nbytes(), "server": self.server_bank.nbytes()}

    def cut_message_nbytes(self, batch: Mapping[str, torch.Tensor]) -> dict[str, int]:
        """Bytes that cross the cut per step on ``batch``: ``activation`` (hidden + mask + labels) and ``gradient``.

        The sizes :meth:`client_forward` and :meth:`server_step` report, from the shapes
        and dtypes alone (no compute): the hidden state has the base weights' dtype.
        """
        b, t = batch["input_ids"].shape
        hidden = compress.encoded_nbytes((b, t, self.model.config.hidden_size), self.cut_dtype,
                                         element_size=self.client_part.embed.weight.element_size())
        return {"activation": hidden + tensor_nbytes(batch["attention_mask"]) + tensor_nbytes(batch["labels"]),
                "gradient": hidden}

    def adapter_element_size(self) -> int:
        """Bytes per adapter weight (4 for float32)."""
        return next(iter(self.client_bank.params[0].values())).element_size()

    def fedavg(self, weights: Mapping[int, float]) -> None:
        """FedAvg of the adapters, then broadcast: every client holds the average.

        Client-side adapters and the server-side copies are averaged separately,
        over the clients in ``weights`` (client -> sample count, normalised
        here). Clients not in ``weights`` also receive the average. Optimizer
        states (AdamW moments) are kept. A shared server-side adapter (SFL-V2)
        is left as it is: only the client side is averaged.
        """
        if self._in_flight:
            raise ValueError(f"fedavg while steps are in flight (clients {sorted(self._in_flight)})")
        if not weights:
            raise ValueError("fedavg needs at least one client")
        clients = list(weights)
        for k in clients:
            self._check_client(k)
        w = [weights[k] for k in clients]
        self.client_bank.average(clients, w)
        if not self.shared_server:
            self.server_bank.average(clients, w)

    # -- evaluation -----------------------------------------------------------

    def evaluate(self, batches: Iterable[Mapping[str, torch.Tensor]], label_token_ids: Sequence[int], *,
                 client_state: Mapping[str, torch.Tensor] | None = None,
                 server_state: Mapping[str, torch.Tensor] | None = None) -> EvalResult:
        """Accuracy and loss on label-token examples of client 0's adapters, or of the given states.

        ``client_state`` / ``server_state`` (keys as :meth:`client_adapter_state`) are used in place
        of client 0's weights without writing into them (``torch.func.functional_call``), so steps
        in flight keep their graphs. See :mod:`llm_split.evaluate`. Runs in eval mode under no_grad.
        """
        self.use(0)
        device = self._device()
        client_part = _with_weights(self.client_part, lora_mod.SLOT, client_state)
        server_part = _with_weights(self.server_part, lora_mod.SLOT, server_state)

        def predict(batch):
            mask = batch["attention_mask"].to(device)
            hidden = client_part(batch["input_ids"].to(device), attention_mask=mask)
            return server_part(hidden, attention_mask=mask, logits_to_keep=2).logits[:, 0]  # (B, V) at T-2

        was_training = self.model.training
        self.model.eval()
        try:
            return evaluate_label_token(predict, batches, label_token_ids)
        finally:
            self.model.train(was_training)

    # -- internals ------------------------------------------------------------

    def _check_client(self, client: int) -> None:
        if isinstance(client, bool) or not isinstance(client, int) or not 0 <= client < self.n_clients:
            raise ValueError(f"client(={client!r}) must be an integer in 0..{self.n_clients - 1}")

    def _server_owner(self, client: int) -> int:
        return 0 if self.shared_server else client

    def _before_step(self, side: str, client: int) -> None:
        if self.before_step is not None:
            params = self.server_parameters(client) if side == "server" else self.client_parameters(client)
            self.before_step(side, client, params)

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _rng_devices(self) -> list:
        device = self._device()
        return [device] if device.type == "cuda" else []

    def _rng_states(self) -> list[torch.Tensor]:
        """Torch's random states that a forward's dropout draws from (CPU, and the GPU's on CUDA)."""
        return [torch.get_rng_state(), *(torch.cuda.get_rng_state(d) for d in self._rng_devices())]

    def _set_rng_states(self, states: list[torch.Tensor]) -> None:
        torch.set_rng_state(states[0])
        for device, state in zip(self._rng_devices(), states[1:]):
            torch.cuda.set_rng_state(state, device)


def _with_weights(part: nn.Module, adapter: str, state: Mapping[str, torch.Tensor] | None) -> Callable:
    """``part`` as a function, with adapter ``adapter``'s weights replaced by ``state`` (not written into it)."""
    if state is None:
        return part
    marker = f".{adapter}."
    override = {name: state[name.replace(marker, ".")] for name, _ in part.named_parameters()
                if marker in name and (".lora_A." in name or ".lora_B." in name)}
    if len(override) != len(state):
        raise ValueError(f"adapter state has {len(state)} tensors, adapter {adapter!r} {len(override)}")
    return lambda *args, **kwargs: torch.func.functional_call(part, override, args, kwargs)
