"""One frozen model, each client's adapter swapped into one PEFT slot; graphs dropped and recomputed.

Against the way it was done before (one PEFT adapter per client), and against a
trainer that keeps every graph: the same weights, losses and gradients, bit for bit.
"""

import pytest
import torch
from peft.tuners.tuners_utils import BaseTunerLayer

from llm_split import lora as lora_mod
from llm_split.lora import LoraSettings
from llm_split.models import tiny_causal_lm
from llm_split.split import split_causal_lm
from llm_split.trainer import SplitLoRATrainer

from _batches import VOCAB, left_padded_batch


def batch(seed=0):
    input_ids, mask, labels = left_padded_batch(3, 10, seed)
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def trainer(n_clients=3, arch="llama", **kwargs):
    model = tiny_causal_lm(arch, vocab_size=VOCAB, n_layers=4)
    kwargs = {"cut_layer": 2, "lora": LoraSettings(rank=4, alpha=8.0), "lr": 1e-2, "seed": 7, **kwargs}
    return SplitLoRATrainer(model, n_clients=n_clients, **kwargs)


def states(tr):
    return [(tr.client_adapter_state(k), tr.server_adapter_state(k)) for k in range(tr.n_clients)]


def assert_same(a, b):
    for (ca, sa), (cb, sb) in zip(a, b, strict=True):
        for x, y in ((ca, cb), (sa, sb)):
            assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("n_clients", [1, 3])
def test_initial_adapters_are_those_of_one_peft_adapter_per_client(arch, n_clients):
    """What the trainer did before: PEFT adapters client0..client{K-1} on each part, all set to client0's."""
    settings = LoraSettings(rank=4, alpha=8.0)
    model = tiny_causal_lm(arch, vocab_size=VOCAB, n_layers=4)
    client, server = split_causal_lm(model.requires_grad_(False), 2)
    names = [f"client{k}" for k in range(n_clients)]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        for part in (client, server):
            lora_mod.add_adapters(part, settings.peft_config(model.config.model_type), names)
    expected = (lora_mod.adapter_parameters(client, "client0"), lora_mod.adapter_parameters(server, "client0"))
    tr = trainer(n_clients, arch)
    for k in range(n_clients):
        for state, old in zip((tr.client_adapter_state(k), tr.server_adapter_state(k)), expected):
            assert state.keys() == old.keys()
            assert all(torch.equal(state[key], old[key]) for key in old)
    assert any(torch.count_nonzero(t) for t in tr.server_adapter_state(0).values())


def test_the_model_holds_one_adapter_whatever_the_number_of_clients():
    few, many = trainer(1), trainer(20)
    count = lambda tr: sum(1 for m in tr.model.modules() if isinstance(m, BaseTunerLayer))  # noqa: E731
    params = lambda tr: sum(p.numel() for p in tr.model.parameters())  # noqa: E731
    assert count(few) == count(many) > 0
    assert params(few) == params(many)
    # Each client's weights are its own tensors: 20 clients, 20 distinct storages per key.
    key = next(iter(many.client_parameters(0)))
    assert len({many.client_parameters(k)[key].data_ptr() for k in range(20)}) == 20


def interleaved(tr, rounds=2):
    """Every client's forward, the server steps in another order, the backwards in a third; then FedAvg."""
    losses = []
    for r in range(rounds):
        msgs = {k: tr.client_forward(k, batch(10 * r + k)) for k in range(tr.n_clients)}
        replies = {k: tr.server_step(k, msgs[k]) for k in reversed(range(tr.n_clients))}
        for k in (1, 0, 2):
            tr.client_backward(k, replies[k])
        losses.append([replies[k].loss for k in range(tr.n_clients)])
        tr.fedavg({0: 1.0, 1: 2.0, 2: 3.0})
    return losses


@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("server_adapters", ["per_client", "shared"])
def test_recomputed_graphs_give_what_kept_graphs_give(dropout, server_adapters):
    kw = dict(lora=LoraSettings(rank=4, alpha=8.0, dropout=dropout), server_adapters=server_adapters)
    runs = {}
    for kept in (0, 1, 3):
        torch.manual_seed(123)  # the dropout draws come from torch's global generator
        tr = trainer(**kw, graphs_kept=kept)
        runs[kept] = (interleaved(tr), states(tr), torch.get_rng_state())
    for kept in (0, 1):
        assert runs[kept][0] == runs[3][0]
        assert_same(runs[kept][1], runs[3][1])
        assert torch.equal(runs[kept][2], runs[3][2])  # the global stream moved as much


def test_only_graphs_kept_are_held_and_the_flops_are_those_of_the_step():
    tr, ref = trainer(graphs_kept=1), trainer(graphs_kept=3)
    for t in (tr, ref):
        msgs = {k: t.client_forward(k, batch(k)) for k in range(3)}
        if t is tr:
            assert [f.hidden is not None for f in tr._in_flight.values()] == [True, False, False]
        for k in range(3):
            t.client_backward(k, t.server_step(k, msgs[k]))
    # The first real step of the shape is the measured one; the recomputation is not counted.
    assert tr.step_flops(batch()) == ref.step_flops(batch())
    assert_same(states(tr), states(ref))


def test_cancelled_step_frees_its_place_and_changes_nothing():
    tr = trainer(graphs_kept=1)
    before = states(tr)
    tr.client_forward(0, batch())
    tr.cancel(0)
    assert not tr._in_flight
    assert_same(states(tr), before)
    msg = tr.client_forward(1, batch())
    assert tr._in_flight[1].hidden is not None  # the cancelled one no longer holds the place
    tr.client_backward(1, tr.server_step(1, msg))
