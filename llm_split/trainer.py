"""Split federated LoRA training: one step as three messages, and FedAvg of the adapters.

A step of client k (FedsLLM, the split-learning round of SplitFed):

    client_forward(k, batch) -> CutMessage    device: embeddings + blocks [0, s)
    server_step(k, message)  -> ServerReply   main server: blocks [s, L) + head,
                                              forward, backward, optimizer step
    client_backward(k, reply)                 device: backward, optimizer step

Each client has its own LoRA adapter on both sides of the cut (PEFT adapter
``"client{k}"``) and its own AdamW per side, so steps of different clients may
interleave freely: client_forward(0), client_forward(1), server_step(1),
server_step(0), client_backward(1), client_backward(0) gives what running the
clients one after the other gives. :meth:`SplitLoRATrainer.fedavg` then
averages the adapters and gives every client the average (SFL-V1).

With ``server_adapters="shared"`` the main server keeps one server-side adapter
and one AdamW for all clients (SFL-V2, and vanilla split learning): each
server step updates it, so the order of the server steps is the training order,
and :meth:`SplitLoRATrainer.fedavg` averages the client side only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from cosim.errors import CosimError
from llm_split import compress, lora as lora_mod
from llm_split.evaluate import EvalResult, evaluate_label_token
from llm_split.fedavg import fedavg_state_dicts
from llm_split.flops import (
    StepFlops, analytic_lora_step_flops, first_block_frozen_input_weights, FlopCounter, matmul_weights,
)
from llm_split.payload import CutMessage, ServerReply, state_dict_nbytes, tensor_nbytes
from llm_split.split import split_causal_lm

_PHASES = ("client_forward", "server_forward_backward", "client_backward")


class SplitLoRATrainer:
    """Per-client LoRA adapters on both parts of a split causal LM.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        The causal LM, modified in place: frozen, LoRA injected, train mode.
    cut_layer : int
        Blocks run on the client, ``0 < cut_layer < num_layers``.
    lora : LoraSettings
        Rank, alpha, dropout, target modules.
    n_clients : int
        Number of clients; adapters are named ``client0 .. client{n-1}``.
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
    """

    SERVER_ADAPTERS = ("per_client", "shared")

    def __init__(self, model: nn.Module, *, cut_layer: int, lora: lora_mod.LoraSettings, n_clients: int,
                 lr: float, weight_decay: float = 0.0, seed: int = 0, server_adapters: str = "per_client",
                 cut_dtype: str = "float32"):
        problems = []
        if isinstance(n_clients, bool) or not isinstance(n_clients, int) or n_clients < 1:
            problems.append(f"n_clients(={n_clients!r}) must be an integer >= 1")
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
            problems.append(f"lr(={lr!r}) must be > 0")
        if not isinstance(weight_decay, (int, float)) or not weight_decay >= 0:
            problems.append(f"weight_decay(={weight_decay!r}) must be >= 0")
        if server_adapters not in self.SERVER_ADAPTERS:
            problems.append(f"server_adapters(={server_adapters!r}) must be one of {', '.join(self.SERVER_ADAPTERS)}")
        if problems:
            raise CosimError("; ".join(problems))
        self.model = model
        self.n_clients = n_clients
        self.cut_layer = cut_layer
        self.cut_dtype = compress.check_cut_dtype(cut_dtype)
        self.names = [f"client{k}" for k in range(n_clients)]
        self.shared_server = server_adapters == "shared"
        self.server_names = ["shared"] if self.shared_server else self.names
        model.requires_grad_(False)
        self.client_part, self.server_part = split_causal_lm(model, cut_layer)
        config = lora.peft_config(model.config.model_type)
        with torch.random.fork_rng(devices=[]):  # seeded init without moving the caller's generator
            torch.manual_seed(seed)
            for part, names in ((self.client_part, self.names), (self.server_part, self.server_names)):
                lora_mod.add_adapters(part, config, names)
                for name in names[1:]:
                    lora_mod.copy_adapter(part, names[0], name)
        model.train()  # LoRA dropout (if any) is on while training
        self._client_optimizers = [self._adamw(self.client_part, name, lr, weight_decay) for name in self.names]
        self._server_optimizers = [self._adamw(self.server_part, name, lr, weight_decay) for name in self.server_names]
        # Called as before_step(side, client, params) after a step's backward and before its AdamW
        # step, with that side's adapter parameters of that client (e.g. to add a regulariser's gradient).
        self.before_step: Callable[[str, int, Mapping[str, nn.Parameter]], None] | None = None
        self._in_flight: dict[int, torch.Tensor] = {}  # client -> its hidden output, graph kept
        self._flops: dict[tuple[int, int], StepFlops] = {}  # (B, T) -> measured FLOPs
        self._partial_flops: dict[tuple[int, int], dict[str, int]] = {}

    def _adamw(self, part: nn.Module, name: str, lr: float, weight_decay: float) -> torch.optim.AdamW:
        params = list(lora_mod.adapter_parameters(part, name).values())
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)

    # -- one step, as messages ------------------------------------------------

    def client_forward(self, client: int, batch: Mapping[str, torch.Tensor]) -> CutMessage:
        """Run the client part on a batch with client ``client``'s adapter.

        ``batch`` holds ``input_ids``, ``attention_mask`` and ``labels``, each
        (B, T). The graph is kept for :meth:`client_backward`.
        """
        self._check_client(client)
        if client in self._in_flight:
            raise ValueError(f"client {client} already has a step in flight; call client_backward first")
        device = self._device()
        input_ids, mask, labels = (batch[k].to(device) for k in ("input_ids", "attention_mask", "labels"))
        lora_mod.activate(self.client_part, self.names[client])
        with self._count(tuple(input_ids.shape), "client_forward"):
            hidden = self.client_part(input_ids, attention_mask=mask)  # (B, T, H)
        self._in_flight[client] = hidden
        sent, sent_nbytes = compress.roundtrip(hidden.detach(), self.cut_dtype)  # as the server decodes it
        return CutMessage(hidden=sent, attention_mask=mask, labels=labels,
                          nbytes=sent_nbytes + tensor_nbytes(mask) + tensor_nbytes(labels))

    def server_step(self, client: int, message: CutMessage) -> ServerReply:
        """Server forward, backward and AdamW step with client ``client``'s server-side adapter."""
        self._check_client(client)
        lora_mod.activate(self.server_part, self.server_name(client))
        # A fresh leaf: the server's graph starts at the received activations.
        hidden = message.hidden.detach().requires_grad_(True)  # (B, T, H)
        with self._count(tuple(hidden.shape[:2]), "server_forward_backward"):
            loss = self.server_part(hidden, attention_mask=message.attention_mask, labels=message.labels).loss
            loss.backward()
        self._before_step("server", self.server_part, client)
        optimizer = self._server_optimizers[0 if self.shared_server else client]
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        grad, grad_nbytes = compress.roundtrip(hidden.grad, self.cut_dtype)  # as the client decodes it
        return ServerReply(loss=loss.item(), grad=grad, nbytes=grad_nbytes)

    def client_backward(self, client: int, reply: ServerReply) -> None:
        """Backpropagate the cut gradient through client ``client``'s graph; AdamW step."""
        self._check_client(client)
        if client not in self._in_flight:
            raise ValueError(f"client {client} has no step in flight; call client_forward first")
        hidden = self._in_flight.pop(client)
        with self._count(tuple(hidden.shape[:2]), "client_backward"):
            hidden.backward(reply.grad.to(hidden.device))
        self._before_step("client", self.client_part, client)
        optimizer = self._client_optimizers[client]
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def cancel(self, client: int) -> None:
        """Forget client ``client``'s step in flight, if any (its chain was cut before the backward)."""
        self._check_client(client)
        self._in_flight.pop(client, None)

    def server_name(self, client: int) -> str:
        """The server-side adapter that client ``client``'s steps use (``"shared"`` under SFL-V2)."""
        return self.server_names[0] if self.shared_server else self.names[client]

    # -- adapters -------------------------------------------------------------

    def client_adapter_state(self, client: int) -> dict[str, torch.Tensor]:
        """Copy of client ``client``'s client-side LoRA weights (keys without the adapter name)."""
        self._check_client(client)
        return {k: p.detach().clone() for k, p in lora_mod.adapter_parameters(self.client_part, self.names[client]).items()}

    def server_adapter_state(self, client: int) -> dict[str, torch.Tensor]:
        """Copy of the server-side LoRA weights that the main server uses for client ``client`` (the shared ones
        under SFL-V2)."""
        self._check_client(client)
        params = lora_mod.adapter_parameters(self.server_part, self.server_name(client))
        return {k: p.detach().clone() for k, p in params.items()}

    def set_client_adapter_state(self, client: int, state: Mapping[str, torch.Tensor]) -> None:
        """Overwrite client ``client``'s client-side LoRA weights (keys as in :meth:`client_adapter_state`)."""
        self._load(self.client_part, client, state)

    def set_server_adapter_state(self, client: int, state: Mapping[str, torch.Tensor]) -> None:
        """Overwrite the server-side LoRA weights kept for client ``client`` (the shared ones under SFL-V2)."""
        self._load(self.server_part, client, state, self.server_name(client))

    def adapter_nbytes(self) -> dict[str, int]:
        """Bytes of one client's adapter on each side: ``{"client": ..., "server": ...}``."""
        return {"client": state_dict_nbytes(self.client_adapter_state(0)),
                "server": state_dict_nbytes(self.server_adapter_state(0))}

    def cut_message_nbytes(self, batch: Mapping[str, torch.Tensor]) -> dict[str, int]:
        """Bytes that cross the cut per step on ``batch``: ``activation`` (hidden + mask + labels) and ``gradient``.

        The sizes :meth:`client_forward` and :meth:`server_step` report, from the shapes
        and dtypes alone (no compute).
        """
        b, t = batch["input_ids"].shape
        param = next(self.client_part.parameters())
        hidden = compress.encoded_nbytes((b, t, self.model.config.hidden_size), self.cut_dtype,
                                         element_size=param.element_size())
        return {"activation": hidden + tensor_nbytes(batch["attention_mask"]) + tensor_nbytes(batch["labels"]),
                "gradient": hidden}

    def adapter_element_size(self) -> int:
        """Bytes per adapter weight (4 for float32)."""
        return next(iter(self.client_adapter_state(0).values())).element_size()

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
        client_avg = fedavg_state_dicts([self.client_adapter_state(k) for k in clients], w)
        for k in range(self.n_clients):
            self.set_client_adapter_state(k, client_avg)
        if not self.shared_server:
            server_avg = fedavg_state_dicts([self.server_adapter_state(k) for k in clients], w)
            for k in range(self.n_clients):
                self.set_server_adapter_state(k, server_avg)

    # -- measurements ---------------------------------------------------------

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
        if phase not in _PHASES:
            raise ValueError(f"phase(={phase!r}) must be one of {', '.join(_PHASES)}")
        shape = tuple(batch["input_ids"].shape)
        if shape in self._flops:
            return getattr(self._flops[shape], phase)
        partial = self._partial_flops.get(shape, {})
        if phase in partial:
            return partial[phase]
        return getattr(self.step_flops(batch), phase)

    def analytic_step_flops(self, batch_size: int, seq_len: int) -> StepFlops:
        """The analytic estimate of :func:`llm_split.flops.analytic_lora_step_flops` for this split."""
        config = self.model.config
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        return analytic_lora_step_flops(
            batch_size=batch_size, seq_len=seq_len,
            client_weights=matmul_weights(self.client_part), server_weights=matmul_weights(self.server_part),
            client_lora_weights=sum(t.numel() for t in self.client_adapter_state(0).values()),
            server_lora_weights=sum(t.numel() for t in self.server_adapter_state(0).values()),
            client_layers=len(self.client_part.blocks), server_layers=len(self.server_part.blocks),
            attention_dim=config.num_attention_heads * head_dim,
            first_block_frozen_input_weights=first_block_frozen_input_weights(self.client_part),
        )

    def evaluate(self, batches: Iterable[Mapping[str, torch.Tensor]], label_token_ids: Sequence[int], *,
                 client_state: Mapping[str, torch.Tensor] | None = None,
                 server_state: Mapping[str, torch.Tensor] | None = None) -> EvalResult:
        """Accuracy and loss on label-token examples of client 0's adapters, or of the given states.

        ``client_state`` / ``server_state`` (keys as :meth:`client_adapter_state`) are used in place
        of client 0's weights without writing into them (``torch.func.functional_call``), so steps
        in flight keep their graphs. See :mod:`llm_split.evaluate`. Runs in eval mode under no_grad.
        """
        lora_mod.activate(self.client_part, self.names[0])
        lora_mod.activate(self.server_part, self.server_name(0))
        device = self._device()
        client_part = _with_weights(self.client_part, self.names[0], client_state)
        server_part = _with_weights(self.server_part, self.server_name(0), server_state)

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

    def _before_step(self, side: str, part: nn.Module, client: int) -> None:
        if self.before_step is not None:
            name = self.server_name(client) if side == "server" else self.names[client]
            self.before_step(side, client, lora_mod.adapter_parameters(part, name))

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def _load(self, part: nn.Module, client: int, state: Mapping[str, torch.Tensor], name: str | None = None) -> None:
        self._check_client(client)
        params = lora_mod.adapter_parameters(part, name or self.names[client])
        if sorted(params) != sorted(state):
            raise ValueError(f"adapter state keys {sorted(state)} do not match {sorted(params)}")
        for key, param in params.items():
            param.copy_(state[key])

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
        if len(partial) == len(_PHASES):
            self._flops[shape] = StepFlops(**partial)
            del self._partial_flops[shape]

    def _measure(self, batch: Mapping[str, torch.Tensor]) -> None:
        """A step of client 0 that leaves no trace (weights, gradients, random state): only its FLOPs."""
        device = self._device()
        input_ids, mask, labels = (batch[k].to(device) for k in ("input_ids", "attention_mask", "labels"))
        params = [*lora_mod.adapter_parameters(self.client_part, self.names[0]).values(),
                  *lora_mod.adapter_parameters(self.server_part, self.server_name(0)).values()]
        # backward(), as in a real step; the gradients it accumulates are put back.
        saved_grads = [p.grad for p in params]
        counts = {}
        try:
            with torch.random.fork_rng(devices=[]):  # dropout draws must not shift training's stream
                lora_mod.activate(self.client_part, self.names[0])
                lora_mod.activate(self.server_part, self.server_name(0))
                with FlopCounter() as counter:
                    hidden = self.client_part(input_ids, attention_mask=mask)
                counts["client_forward"] = counter.total
                received = hidden.detach().requires_grad_(True)
                with FlopCounter() as counter:
                    self.server_part(received, attention_mask=mask, labels=labels).loss.backward()
                counts["server_forward_backward"] = counter.total
                with FlopCounter() as counter:
                    hidden.backward(received.grad)
                counts["client_backward"] = counter.total
        finally:
            for p, g in zip(params, saved_grads):
                p.grad = g
        self._flops[tuple(input_ids.shape)] = StepFlops(**counts)
        self._partial_flops.pop(tuple(input_ids.shape), None)


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
