"""One split LoRA step equals the unsplit LoRA step; clients stay independent when interleaved."""

import pytest
import torch

from cosim.errors import CosimError
from llm_split.lora import LoraSettings
from llm_split.models import tiny_causal_lm
from llm_split.payload import CutMessage, ServerReply
from llm_split.trainer import SplitLoRATrainer

from _batches import VOCAB, left_padded_batch


def batch(seed=0, batch_size=3, seq_len=10):
    """Random tokens, rows 1 and 2 left-padded; labels -100 on padding."""
    input_ids, mask, labels = left_padded_batch(batch_size, seq_len, seed)
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def trainer(arch="llama", n_clients=2, seed=0, **kwargs):
    model = tiny_causal_lm(arch, vocab_size=VOCAB, n_layers=4)
    kwargs = {"cut_layer": 2, "lora": LoraSettings(rank=4, alpha=8.0), "lr": 1e-2, **kwargs}
    return SplitLoRATrainer(model, n_clients=n_clients, seed=seed, **kwargs)


def randomise_adapters(tr, seed=1):
    """Non-zero B matrices, so that every LoRA weight gets a gradient (B = 0 at init blocks A's)."""
    g = torch.Generator().manual_seed(seed)
    for client in range(tr.n_clients):
        for state, load in ((tr.client_adapter_state(client), tr.set_client_adapter_state),
                            (tr.server_adapter_state(client), tr.set_server_adapter_state)):
            load(client, {k: torch.randn(v.shape, generator=g) * 0.1 for k, v in state.items()})


def step(tr, client, b):
    msg = tr.client_forward(client, b)
    reply = tr.server_step(client, msg)
    tr.client_backward(client, reply)
    return reply.loss


def all_states(tr):
    return [(tr.client_adapter_state(k), tr.server_adapter_state(k)) for k in range(tr.n_clients)]


def assert_states_equal(a, b):
    for (ca, sa), (cb, sb) in zip(a, b):
        for x, y in ((ca, cb), (sa, sb)):
            assert x.keys() == y.keys()
            assert all(torch.equal(x[k], y[k]) for k in x)


@pytest.mark.parametrize("arch", ["llama", "gpt2", "gpt_neox"])
def test_split_step_gives_unsplit_loss_and_lora_gradients(arch):
    split, unsplit = trainer(arch), trainer(arch)
    randomise_adapters(split)
    randomise_adapters(unsplit)
    b = batch()
    # Capture client 0's gradients in the split step (its optimizers consume and clear them).
    grads = {}
    for side, params in (("client", split.client_parameters(0)), ("server", split.server_parameters(0))):
        for key, p in params.items():
            p.register_hook(lambda g, key=(side, key): grads.__setitem__(key, g.clone()))
    loss = step(split, 0, b)

    # The same LoRA model (client 0's adapter in every layer), not split.
    unsplit.use(0)
    ref = unsplit.model(b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"]).loss
    ref.backward()
    # The server computes the LM head only where a label is set: the same loss up to float rounding.
    assert loss == pytest.approx(ref.item(), rel=0, abs=1e-6)
    n_checked = 0
    for side, params in (("client", unsplit.client_parameters(0)), ("server", unsplit.server_parameters(0))):
        for key, p in params.items():
            torch.testing.assert_close(grads[side, key], p.grad, rtol=0, atol=1e-6)
            assert p.grad.abs().sum() > 0
            n_checked += 1
    assert n_checked == len(grads) > 0


def test_interleaved_clients_equal_sequential_clients():
    inter, seq = trainer(n_clients=3), trainer(n_clients=3)
    b = {k: batch(seed=10 + k) for k in range(3)}
    seq_losses = {}
    for k in range(3):
        seq_losses[k] = [step(seq, k, b[k]), step(seq, k, b[k])]

    inter_losses = {k: [] for k in range(3)}
    for _ in range(2):
        msgs = {k: inter.client_forward(k, b[k]) for k in (0, 1, 2)}
        replies = {}
        for k in (1, 2, 0):
            replies[k] = inter.server_step(k, msgs[k])
            inter_losses[k].append(replies[k].loss)
        for k in (2, 0, 1):
            inter.client_backward(k, replies[k])

    assert inter_losses == seq_losses
    assert_states_equal(all_states(inter), all_states(seq))
    # Each client trained its own adapter: different batches, different weights.
    c0, c1 = inter.client_adapter_state(0), inter.client_adapter_state(1)
    assert any(not torch.equal(c0[k], c1[k]) for k in c0)


def test_a_step_changes_only_that_clients_adapters():
    tr = trainer(n_clients=2)
    before = all_states(tr)
    step(tr, 0, batch())
    after = all_states(tr)
    assert_states_equal(after[1:], before[1:])
    assert any(not torch.equal(after[0][0][k], before[0][0][k]) for k in before[0][0])  # client side
    assert any(not torch.equal(after[0][1][k], before[0][1][k]) for k in before[0][1])  # server side


def test_clients_start_identical_and_seed_fixes_the_init():
    a, b, c = trainer(n_clients=3, seed=5), trainer(n_clients=3, seed=5), trainer(n_clients=3, seed=6)
    assert_states_equal(all_states(a), all_states(b))
    assert_states_equal(all_states(a)[1:], all_states(a)[:1] * 2)
    a0, c0 = a.client_adapter_state(0), c.client_adapter_state(0)
    assert any(not torch.equal(a0[k], c0[k]) for k in a0)


def test_messages_hold_the_cut_tensors_and_their_sizes():
    tr = trainer("llama")
    b = batch(batch_size=3, seq_len=10)
    msg = tr.client_forward(0, b)
    assert isinstance(msg, CutMessage)
    assert msg.hidden.shape == (3, 10, 64) and not msg.hidden.requires_grad
    assert msg.nbytes == 3 * 10 * 64 * 4 + 2 * 3 * 10 * 8  # float32 hidden, int64 mask and labels
    reply = tr.server_step(0, msg)
    assert isinstance(reply, ServerReply)
    assert reply.grad.shape == (3, 10, 64) and reply.nbytes == 3 * 10 * 64 * 4
    assert isinstance(reply.loss, float)
    tr.client_backward(0, reply)


def test_adapter_nbytes_by_hand():
    tr = trainer("llama", lora=LoraSettings(rank=4))
    # Per block: q_proj (64 -> 64) and v_proj (64 -> 32, grouped-query attention).
    per_block = 4 * (64 + 64) + 4 * (64 + 32)
    assert tr.adapter_nbytes() == {"client": 2 * per_block * 4, "server": 2 * per_block * 4}
    assert tr.adapter_element_size() == 4


def test_misuse_is_refused():
    tr = trainer(n_clients=2)
    with pytest.raises(ValueError, match="client"):
        tr.client_forward(2, batch())
    with pytest.raises(ValueError, match="no step in flight"):
        tr.client_backward(0, None)
    tr.client_forward(0, batch())
    with pytest.raises(ValueError, match="in flight"):
        tr.client_forward(0, batch())
    with pytest.raises(ValueError, match="in flight"):
        tr.fedavg({0: 1.0})


def test_settings_are_checked_together():
    with pytest.raises(CosimError) as err:
        LoraSettings(rank=0, alpha=-1.0, dropout=1.5)
    assert "rank" in str(err.value) and "alpha" in str(err.value) and "dropout" in str(err.value)
    with pytest.raises(CosimError, match="n_clients.*lr"):
        trainer(n_clients=0, lr=0.0)
    with pytest.raises(CosimError, match="not_a_module"):
        trainer(lora=LoraSettings(target_modules=("not_a_module",)))


def test_default_targets_per_family():
    gpt2 = trainer("gpt2")
    assert all(".c_attn." in k for k in gpt2.client_adapter_state(0))
    neox = trainer("gpt_neox")
    assert all(".query_key_value." in k for k in neox.server_adapter_state(0))
    llama = trainer("llama")
    assert {k.split(".")[3] for k in llama.client_adapter_state(0)} == {"q_proj", "v_proj"}


def test_before_step_sees_each_sides_gradients_and_can_change_the_step():
    tr = trainer()
    randomise_adapters(tr)
    before = all_states(tr)
    seen = []

    def zero_grads(side, client, params):
        seen.append((side, client, sorted(params)))
        assert all(p.grad is not None for p in params.values())   # after backward, before the step
        for p in params.values():
            p.grad.zero_()   # AdamW with zero gradients, fresh moments and no weight decay: no change

    tr.before_step = zero_grads
    step(tr, 1, batch())
    assert [(s, c) for s, c, _ in seen] == [("server", 1), ("client", 1)]
    assert seen[0][2] == sorted(tr.server_adapter_state(1)) and seen[1][2] == sorted(tr.client_adapter_state(1))
    assert_states_equal(all_states(tr), before)
    tr.before_step = None
    step(tr, 1, batch())
    after = all_states(tr)
    assert not all(torch.equal(after[1][0][k], before[1][0][k]) for k in before[1][0])
