"""A new cut or rank between rounds: the model and the training state carried over (llm_split.reconfigure)."""

import dataclasses

import pytest
import torch

from llm_split.lora import LoraSettings
from llm_split.models import tiny_causal_lm
from llm_split.reconfigure import reconfigure
from llm_split.trainer import SplitLoRATrainer

from _batches import VOCAB, left_padded_batch

LORA = LoraSettings(rank=4, alpha=8.0, target_modules=("q_proj", "k_proj", "v_proj", "o_proj"))


def batch(seed=0):
    input_ids, mask, labels = left_padded_batch(3, 10, seed)
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def step(tr, client, b):
    reply = tr.server_step(client, tr.client_forward(client, b))
    tr.client_backward(client, reply)
    return reply.loss


@pytest.fixture
def trained():
    """Two clients, cut 2 of 4 blocks, three steps each (B no longer zero), then FedAvg."""
    torch.manual_seed(0)
    tr = SplitLoRATrainer(tiny_causal_lm("llama", vocab_size=VOCAB, n_layers=4), cut_layer=2, lora=LORA,
                          n_clients=2, lr=1e-2, seed=0)
    for s in range(3):
        for k in range(2):
            step(tr, k, batch(s + 10 * k))
    tr.fedavg({0: 1.0, 1: 1.0})
    return tr


def logits(tr, b):
    tr.model.eval()
    with torch.no_grad():
        hidden = tr.client_part(b["input_ids"], attention_mask=b["attention_mask"])
        return tr.server_part(hidden, attention_mask=b["attention_mask"]).logits


def per_block(tr, client=0):
    """Adapter weights keyed by the block's index in the whole model."""
    out = {}
    for part, state in ((tr.client_part, tr.client_adapter_state(client)),
                        (tr.server_part, tr.server_adapter_state(client))):
        for key, value in state.items():
            head, i, rest = key.split(".", 2)
            out[f"{head}.{int(i) + part.first_layer}.{rest}"] = value
    return out


def moments(tr, client=0):
    """exp_avg of every adapter weight, keyed as in :func:`per_block`."""
    out = {}
    for part, opt, params in ((tr.client_part, tr.client_optimizer(client), tr.client_parameters(client)),
                              (tr.server_part, tr.server_optimizer(client), tr.server_parameters(client))):
        for key, p in params.items():
            head, i, rest = key.split(".", 2)
            out[f"{head}.{int(i) + part.first_layer}.{rest}"] = opt.state[p]["exp_avg"].clone()
    return out


@pytest.mark.parametrize("new_cut", [1, 3])
def test_a_new_cut_changes_nothing_the_model_computes(trained, new_cut):
    b = batch(99)
    before, weights, adam = logits(trained, b), per_block(trained), moments(trained)
    new = reconfigure(trained, cut=new_cut, lora=LORA, rank=4)
    assert new.cut_layer == new_cut and len(new.client_part.blocks) == new_cut
    torch.testing.assert_close(logits(new, b), before, rtol=0, atol=0)
    after = per_block(new)
    assert sorted(after) == sorted(weights)
    for key in weights:
        torch.testing.assert_close(after[key], weights[key], rtol=0, atol=0)
    # The moved blocks' AdamW moments moved with them (client <-> server optimizer).
    new_adam = moments(new)
    for key in adam:
        torch.testing.assert_close(new_adam[key], adam[key], rtol=0, atol=0)
    # The old trainer is untouched, and training goes on.
    torch.testing.assert_close(logits(trained, b), before, rtol=0, atol=0)
    new.model.train()
    assert step(new, 1, batch(5)) == pytest.approx(step(new, 0, batch(5)), rel=1e-5)


def test_a_larger_rank_keeps_the_product_and_the_output(trained):
    b = batch(98)
    before, old = logits(trained, b), per_block(trained)
    new = reconfigure(trained, cut=2, lora=LORA, rank=8)
    torch.testing.assert_close(logits(new, b), before, rtol=1e-5, atol=1e-6)
    now = per_block(new)
    for key in old:
        if ".lora_A." in key:
            b_key = key.replace(".lora_A.", ".lora_B.")
            assert now[key].shape[0] == 8 and now[b_key].shape[1] == 8
            torch.testing.assert_close(now[key][:4], old[key])            # first rows of A kept
            assert torch.count_nonzero(now[b_key][:, 4:]) == 0           # new columns of B zero
            assert torch.count_nonzero(now[key][4:]) > 0                 # new rows of A: LoRA's random init
            # The scaled update (alpha / r) B A is the same.
            torch.testing.assert_close(8.0 / 8 * now[b_key] @ now[key], 8.0 / 4 * old[b_key] @ old[key],
                                       rtol=1e-6, atol=1e-7)


def test_a_smaller_rank_is_the_best_low_rank_approximation(trained):
    old = per_block(trained)
    new = reconfigure(trained, cut=2, lora=LORA, rank=2)
    now = per_block(new)
    for key in old:
        if ".lora_A." in key:
            b_key = key.replace(".lora_A.", ".lora_B.")
            update = (8.0 / 4 * old[b_key] @ old[key]).double()
            u, s, vh = torch.linalg.svd(update)
            best = (u[:, :2] * s[:2]) @ vh[:2]                            # Eckart-Young, independently
            torch.testing.assert_close((8.0 / 2 * now[b_key] @ now[key]).double(), best, rtol=1e-5, atol=1e-7)
            assert now[key].shape == (2, old[key].shape[1])
            # Balanced factors: ||B_j|| = ||A_j|| per component.
            torch.testing.assert_close(now[b_key].norm(dim=0), now[key].norm(dim=1), rtol=1e-4, atol=1e-6)
    # Moments of resized tensors start again.
    optimizers = [*new.client_bank.optimizers, *new.server_bank.optimizers]
    assert all(not s for opt in optimizers for s in opt.state.values())


def test_growing_then_shrinking_back_is_exact(trained):
    b = batch(97)
    before = logits(trained, b)
    grown = reconfigure(trained, cut=3, lora=LORA, rank=8)
    back = reconfigure(grown, cut=1, lora=dataclasses.replace(LORA, rank=8), rank=4)
    torch.testing.assert_close(logits(back, b), before, rtol=1e-4, atol=1e-5)


def test_a_smaller_rank_before_training_keeps_a_trainable_initialisation():
    """B = 0 at the start: the SVD has only zero components, so A keeps LoRA's init and training moves it."""
    torch.manual_seed(0)
    tr = SplitLoRATrainer(tiny_causal_lm("llama", vocab_size=VOCAB, n_layers=4), cut_layer=2, lora=LORA,
                          n_clients=1, lr=1e-2, seed=0)
    new = reconfigure(tr, cut=2, lora=LORA, rank=2)
    weights = per_block(new)
    a_keys = [k for k in weights if ".lora_A." in k]
    assert all(torch.count_nonzero(weights[k]) == weights[k].numel() for k in a_keys)
    assert all(torch.count_nonzero(weights[k.replace(".lora_A.", ".lora_B.")]) == 0 for k in a_keys)
    new.model.train()
    step(new, 0, batch(1))
    moved = per_block(new)
    assert any(torch.count_nonzero(moved[k.replace(".lora_A.", ".lora_B.")]) > 0 for k in a_keys)
