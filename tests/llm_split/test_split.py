"""The split model computes exactly what the unsplit model computes."""

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from cosim.errors import CosimError
from llm_split.models import tiny_causal_lm
from llm_split.split import ClientPart, ServerPart, split_causal_lm

from _batches import VOCAB, left_padded_batch


def assert_split_equals_unsplit(model, cut_layer, input_ids, mask, labels):
    ref = model(input_ids, attention_mask=mask, labels=labels)
    client, server = split_causal_lm(model, cut_layer)
    out = server(client(input_ids, attention_mask=mask), attention_mask=mask, labels=labels)
    # Same kernels in the same order on the same inputs: bitwise equal, not just close.
    assert torch.equal(out.logits, ref.logits)
    assert torch.equal(out.loss, ref.loss)


@pytest.mark.parametrize("arch", ["llama", "gpt2", "qwen2", "gpt_neox", "mistral"])
@pytest.mark.parametrize("cut_layer", [1, 2, 3])
def test_split_gives_the_unsplit_loss_and_logits(arch, cut_layer):
    model = tiny_causal_lm(arch, vocab_size=VOCAB, n_layers=4)
    assert_split_equals_unsplit(model, cut_layer, *left_padded_batch())


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_split_without_padding_mask_and_in_train_mode(arch):
    model = tiny_causal_lm(arch, vocab_size=VOCAB).train()
    input_ids, _, _ = left_padded_batch()
    ref = model(input_ids, labels=input_ids)
    client, server = split_causal_lm(model, 2)
    out = server(client(input_ids), labels=input_ids)
    assert torch.equal(out.loss, ref.loss)


def _sliding_model(model_type, **extra):
    config = AutoConfig.for_model(
        model_type, vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, **extra)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config).eval()


@pytest.mark.parametrize("model", [
    # Qwen2: layers 2, 3 use a 4-token sliding window, 0, 1 full attention (config.layer_types).
    pytest.param(lambda: _sliding_model("qwen2", use_sliding_window=True, sliding_window=4,
                                        max_window_layers=2), id="qwen2-mixed-windows"),
    pytest.param(lambda: _sliding_model("mistral", sliding_window=4), id="mistral-window"),
])
def test_split_with_sliding_window_attention(model):
    model = model()
    batch = left_padded_batch(seq_len=12)
    unwindowed = _sliding_model(model.config.model_type)
    unwindowed.load_state_dict(model.state_dict())
    # The window matters on these inputs, so the test sees whether the split applies it.
    assert not torch.equal(unwindowed(batch[0], attention_mask=batch[1]).logits,
                           model(batch[0], attention_mask=batch[1]).logits)
    for cut_layer in (1, 2, 3):
        assert_split_equals_unsplit(model, cut_layer, *batch)


def test_parts_share_the_model_weights():
    model = tiny_causal_lm("llama", vocab_size=VOCAB)
    client, server = split_causal_lm(model, 2)
    assert isinstance(client, ClientPart) and isinstance(server, ServerPart)
    assert client.blocks[0] is model.model.layers[0]
    assert server.blocks[0] is model.model.layers[2]
    assert client.embed.weight is model.model.embed_tokens.weight
    assert server.lm_head.weight is model.lm_head.weight
    storages = {p.data_ptr() for part in (client, server) for p in part.parameters()}
    assert storages == {p.data_ptr() for p in model.parameters()}


def test_server_returns_logits_without_labels_and_keeps_last_positions():
    model = tiny_causal_lm("gpt2", vocab_size=VOCAB)
    input_ids, mask, _ = left_padded_batch()
    client, server = split_causal_lm(model, 1)
    hidden = client(input_ids, attention_mask=mask)
    out = server(hidden, attention_mask=mask)
    assert out.loss is None and out.logits.shape == (3, 10, VOCAB)
    last_two = server(hidden, attention_mask=mask, logits_to_keep=2).logits
    # A smaller matmul may sum in another order: equal to float32 rounding only.
    torch.testing.assert_close(last_two, out.logits[:, -2:], rtol=0, atol=1e-6)


@pytest.mark.parametrize("cut_layer", [0, 4, -1, 7, 2.0, True])
def test_bad_cut_layer_is_refused(cut_layer):
    model = tiny_causal_lm("llama", vocab_size=VOCAB, n_layers=4)
    with pytest.raises(CosimError) as err:
        split_causal_lm(model, cut_layer)
    message = str(err.value)
    assert "cut_layer" in message and repr(cut_layer) in message and "1..3" in message


def test_unsupported_model_is_refused_by_class_name():
    with pytest.raises(CosimError, match="Linear"):
        split_causal_lm(torch.nn.Linear(2, 2), 1)
    config = AutoConfig.for_model("opt", vocab_size=VOCAB, hidden_size=16, num_hidden_layers=2,
                                  ffn_dim=32, num_attention_heads=2, word_embed_proj_dim=16)
    with pytest.raises(CosimError, match="OPTForCausalLM"):
        split_causal_lm(AutoModelForCausalLM.from_config(config), 1)


@pytest.mark.parametrize("arch", ["llama", "gpt2", "gpt_neox"])
@pytest.mark.parametrize("labelled", ["last", "all"])
def test_label_loss_is_the_loss_with_the_head_only_where_labels_are_set(arch, labelled):
    model = tiny_causal_lm(arch, vocab_size=VOCAB).train()
    input_ids, mask, labels = left_padded_batch()
    if labelled == "last":  # classification: one label token per row, at T-1
        labels = torch.full_like(labels, -100)
        labels[:, -1] = input_ids[:, -1]
    client, server = split_causal_lm(model, 2)
    hidden = client(input_ids, attention_mask=mask).detach()
    full, ours = hidden.clone().requires_grad_(True), hidden.clone().requires_grad_(True)
    ref = server(full, attention_mask=mask, labels=labels).loss
    ref.backward()
    loss = server.label_loss(ours, mask, labels)
    loss.backward()
    torch.testing.assert_close(loss, ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.grad, full.grad, rtol=0, atol=1e-6)
    if labelled == "last":  # positions that predict no label get no gradient from the head
        assert torch.count_nonzero(full.grad[:, -1]) == 0
