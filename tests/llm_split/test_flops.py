"""Measured FLOPs of a split LoRA step against the analytic count (PaLM appendix B)."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from llm_split.flops import EXTRA_FLOP_FORMULAS, FlopCounter, StepFlops
from llm_split.lora import LoraSettings
from llm_split.models import tiny_causal_lm
from llm_split.trainer import SplitLoRATrainer

VOCAB = 128


def batch(batch_size=2, seq_len=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, VOCAB, (batch_size, seq_len), generator=g)
    mask = torch.ones(batch_size, seq_len, dtype=torch.long)
    mask[0, :5] = 0  # left padding
    return {"input_ids": input_ids, "attention_mask": mask, "labels": input_ids.masked_fill(mask == 0, -100)}


def trainer(arch="llama", n_layers=6, cut_layer=3):
    model = tiny_causal_lm(arch, vocab_size=VOCAB, n_layers=n_layers)
    return SplitLoRATrainer(model, cut_layer=cut_layer, lora=LoraSettings(rank=4), n_clients=2, lr=1e-3)


@pytest.mark.parametrize("arch", ["llama", "gpt2", "gpt_neox"])
@pytest.mark.parametrize("cut_layer", [1, 4])
def test_measured_flops_match_the_analytic_count(arch, cut_layer):
    tr = trainer(arch, cut_layer=cut_layer)
    measured = tr.step_flops(batch())
    analytic = tr.analytic_step_flops(batch_size=2, seq_len=16)
    for phase in ("client_forward", "server_forward_backward", "client_backward"):
        assert getattr(measured, phase) == pytest.approx(getattr(analytic, phase), rel=0.05)
    assert measured.total == pytest.approx(analytic.total, rel=0.05)
    # A LoRA step is about 4NT (frozen weights need no weight gradient), well short of 6NT.
    n_weights = sum(p.numel() for p in tr.model.parameters() if not p.requires_grad)
    n_tokens = 2 * 16
    assert 3.5 * n_weights * n_tokens < measured.total < 5 * n_weights * n_tokens


def test_attention_is_counted_and_grows_as_t_squared():
    tr = trainer("llama")
    short, long = tr.step_flops(batch(seq_len=16)), tr.step_flops(batch(seq_len=32))
    # Linear terms double with T; attention (a T^2 term) quadruples: f(2T) - 2 f(T) = 2 attention(T).
    attention_short = 2 * 16**2 * 64 * 4 * (3 * 1 + 3 * 3.5 + 3 * 2.5)  # B T^2 d 4 (fwd + fwd/bwd + bwd)
    # The LM head runs where a label is taken: 2T - 6 positions (row 0 has 5 padded tokens, and the
    # last position predicts nothing), 4 H V FLOPs each (forward and input gradient); not linear in T.
    head = 4 * 64 * VOCAB * ((2 * 32 - 6) - 2 * (2 * 16 - 6))
    assert long.total - 2 * short.total == pytest.approx(2 * attention_short + head, rel=1e-9)

    model = tiny_causal_lm("llama", vocab_size=VOCAB, n_layers=6)
    with FlopCounter() as counter:
        model(batch()["input_ids"], attention_mask=batch()["attention_mask"])
    assert counter.attention == 6 * 4 * 2 * 16**2 * 64  # layers x (QK^T + PV) x B T^2 d x 2 FLOPs


def test_counts_agree_with_torch_flop_counter_mode():
    model = tiny_causal_lm("gpt2", vocab_size=VOCAB).train()
    model.requires_grad_(False)
    model.lm_head.weight.requires_grad_(True)  # something to differentiate
    b = batch()
    with FlopCounter() as ours:
        model(b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"]).loss.backward()
    with FlopCounterMode(display=False, custom_mapping=EXTRA_FLOP_FORMULAS) as theirs:
        model(b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"]).loss.backward()
    assert ours.total == theirs.get_total_flops() > 0


def test_measurement_during_a_real_step_equals_the_dry_run_and_leaves_no_trace():
    b = batch()
    real, dry = trainer(), trainer()
    msg = real.client_forward(0, b)
    real.client_backward(0, real.server_step(0, msg))  # the first real step of this shape is counted
    states = [(dry.client_adapter_state(k), dry.server_adapter_state(k)) for k in range(2)]
    rng = torch.get_rng_state()
    measured = dry.step_flops(b)  # no real step yet: a dry run
    assert isinstance(measured, StepFlops)
    assert real.step_flops(b) == measured
    assert dry.step_flops(b) is measured  # cached per shape
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(p.grad is None for p in dry.model.parameters())
    for k, (c, s) in enumerate(states):
        assert all(torch.equal(c[n], dry.client_adapter_state(k)[n]) for n in c)
        assert all(torch.equal(s[n], dry.server_adapter_state(k)[n]) for n in s)


def test_dry_run_while_a_step_is_in_flight_keeps_that_step_intact():
    b = batch()
    a, ref = trainer(), trainer()
    msg = a.client_forward(0, b)
    a.step_flops(batch(seq_len=8))  # another shape, measured between forward and backward
    a.client_backward(0, a.server_step(0, msg))
    msg = ref.client_forward(0, b)
    ref.client_backward(0, ref.server_step(0, msg))
    c, r = a.client_adapter_state(0), ref.client_adapter_state(0)
    assert all(torch.equal(c[n], r[n]) for n in c)


def test_the_head_is_counted_only_where_labels_are_set():
    """Against the full-vocabulary head on every position: 4 H V FLOPs fewer per position without a label."""
    b = batch()
    tr = trainer("llama")
    measured = tr.step_flops(b).server_forward_backward
    hidden = tr.client_part(b["input_ids"], attention_mask=b["attention_mask"]).detach().requires_grad_(True)
    with FlopCounter() as counter:
        tr.server_part(hidden, attention_mask=b["attention_mask"], labels=b["labels"]).loss.backward()
    labelled = int((b["labels"][:, 1:] != -100).sum())  # 11 + 15 of 2 x 16 positions
    assert labelled == 26
    assert counter.total - measured == 4 * 64 * VOCAB * (2 * 16 - labelled)


def test_grouped_query_attention_counts_what_the_repeated_heads_cost():
    """SmolLM2 has 9 query heads and 3 key/value heads. With ``enable_gqa`` the attention kernels get the
    grouped heads, which torch's formulas refuse (an AssertionError seen on torch 2.11 with transformers
    5.17, CPU and CUDA alike); counted as the repeated heads they cost the same as repeating them first."""
    import torch.nn.functional as F

    from llm_split.flops import _FORMULAS

    torch.manual_seed(0)
    q = torch.randn(2, 9, 16, 8, requires_grad=True)
    k, v = torch.randn(2, 3, 16, 8, requires_grad=True), torch.randn(2, 3, 16, 8, requires_grad=True)
    with FlopCounter() as grouped:
        F.scaled_dot_product_attention(q, k, v, enable_gqa=True).sum().backward()
    kr, vr = (t.detach().repeat_interleave(3, dim=1).requires_grad_(True) for t in (k, v))
    with FlopCounter() as repeated:
        F.scaled_dot_product_attention(q, kr, vr).sum().backward()
    assert grouped.total == repeated.total == 2 * 9 * 16 * 16 * 8 * 2 * 2 * (1 + 2.5)  # fwd 2 matmuls, bwd 5
    # The CUDA kernels' formulas (run here on shapes only): grouped heads cost the repeated heads.
    out = torch.zeros(2, 9, 16, 8)
    for name in ("_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention"):
        formula = _FORMULAS[getattr(torch.ops.aten, name)]
        assert formula(q, k, v, None, False, out_val=(out,)) == formula(q, kr, vr, None, False, out_val=(out,))
