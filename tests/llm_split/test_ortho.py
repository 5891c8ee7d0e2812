"""The orthogonality regulariser: closed-form gradient against autograd and finite differences; how it is added."""

import pytest
import torch

from llm_split.lora import LoraSettings, adapter_parameters, add_adapters
from llm_split.models import tiny_causal_lm
from llm_split.ortho import add_ortho_grads, lora_pairs, ortho_penalty, ortho_penalty_grads

# (r, d_in, d_out): r < d, r = d_in = d_out, r = 1, and r = d_out < d_in.
SHAPES = [(2, 5, 7), (3, 3, 3), (1, 4, 6), (4, 9, 4)]


def factors(r, d_in, d_out, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(r, d_in, generator=g, dtype=dtype), torch.randn(d_out, r, generator=g, dtype=dtype)


def test_penalty_by_hand():
    # A = [[2, 0]]: A A^T = 4, (4 - 1)^2 = 9.  B = 0 (3 x 1): B^T B = 0, (0 - 1)^2 = 1.
    A = torch.tensor([[2.0, 0.0]])
    B = torch.zeros(3, 1)
    assert ortho_penalty(A, B).item() == 10.0
    # r = 2: A A^T = [[1, 1], [1, 2]] -> (A A^T - I) = [[0, 1], [1, 1]], 3;  B = I: 0.
    A = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    assert ortho_penalty(A, torch.eye(2)).item() == 3.0
    gA, gB = ortho_penalty_grads(A, torch.eye(2))
    # 4 [[0, 1], [1, 1]] [[1, 0, 0], [1, 1, 0]] = 4 [[1, 1, 0], [2, 1, 0]]
    assert torch.equal(gA, torch.tensor([[4.0, 4.0, 0.0], [8.0, 4.0, 0.0]]))
    assert torch.equal(gB, torch.zeros(2, 2))


@pytest.mark.parametrize("shape", SHAPES)
def test_closed_form_gradient_equals_autograd(shape):
    A, B = factors(*shape)
    A.requires_grad_(True)
    B.requires_grad_(True)
    ortho_penalty(A, B).backward()
    gA, gB = ortho_penalty_grads(A, B)
    assert not gA.requires_grad and not gB.requires_grad
    torch.testing.assert_close(gA, A.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gB, B.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_closed_form_gradient_equals_central_differences(shape):
    A, B = factors(*shape, seed=1)
    gA, gB = ortho_penalty_grads(A, B)
    h = 1e-6
    for X, grad in ((A, gA), (B, gB)):
        numeric = torch.zeros_like(X)
        for idx in range(X.numel()):
            old = X.view(-1)[idx].item()
            X.view(-1)[idx] = old + h
            up = ortho_penalty(A, B).item()
            X.view(-1)[idx] = old - h
            down = ortho_penalty(A, B).item()
            X.view(-1)[idx] = old
            numeric.view(-1)[idx] = (up - down) / (2 * h)
        torch.testing.assert_close(grad, numeric, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
def test_orthonormal_factors_have_zero_penalty_and_gradient(shape):
    r, d_in, d_out = shape
    g = torch.Generator().manual_seed(2)
    A0 = torch.randn(d_in, r, generator=g, dtype=torch.float64)
    B0 = torch.randn(d_out, r, generator=g, dtype=torch.float64)
    A = torch.linalg.qr(A0).Q.T  # (r, d_in), orthonormal rows
    B = torch.linalg.qr(B0).Q  # (d_out, r), orthonormal columns
    assert ortho_penalty(A, B).item() < 1e-24
    gA, gB = ortho_penalty_grads(A, B)
    assert gA.abs().max() < 1e-12 and gB.abs().max() < 1e-12
    # Scaling a factor breaks it: (c^2 - 1)^2 per row of A.
    assert ortho_penalty(2 * A, B).item() == pytest.approx(9.0 * r)


def test_half_precision_grads_keep_the_dtype_and_are_close():
    A, B = factors(3, 8, 6, seed=3)
    gA, gB = ortho_penalty_grads(A.to(torch.bfloat16), B.to(torch.bfloat16))
    assert gA.dtype == gB.dtype == torch.bfloat16
    rA, rB = ortho_penalty_grads(A.to(torch.bfloat16).double(), B.to(torch.bfloat16).double())
    torch.testing.assert_close(gA.double(), rA, rtol=2e-2, atol=2e-2 * rA.abs().max().item())
    torch.testing.assert_close(gB.double(), rB, rtol=2e-2, atol=2e-2 * rB.abs().max().item())


def params_of(modules, seed=0):
    g = torch.Generator().manual_seed(seed)
    params = {}
    for name, (r, d_in, d_out) in modules.items():
        params[f"{name}.lora_A.weight"] = torch.nn.Parameter(torch.randn(r, d_in, generator=g, dtype=torch.float64))
        params[f"{name}.lora_B.weight"] = torch.nn.Parameter(torch.randn(d_out, r, generator=g, dtype=torch.float64))
    return params


def test_add_ortho_grads_equals_autograd_of_the_regularised_loss():
    modules = {"blocks.0.q_proj": (2, 5, 7), "blocks.1.v_proj": (3, 4, 4)}
    weight = 0.3
    ref = params_of(modules)
    task = lambda p: sum((t ** 3).sum() for t in p.values())  # a loss that reaches every factor
    penalties = sum(ortho_penalty(ref[f"{m}.lora_A.weight"], ref[f"{m}.lora_B.weight"]) for m in modules)
    (task(ref) + weight * penalties).backward()

    mine = params_of(modules)
    task(mine).backward()  # the existing grads are accumulated into, not replaced
    total = add_ortho_grads(mine, weight)
    assert total == pytest.approx(penalties.item(), rel=1e-12)
    for key in ref:
        torch.testing.assert_close(mine[key].grad, ref[key].grad, rtol=1e-12, atol=1e-12)


def test_add_ortho_grads_allocates_missing_grads_and_leaves_values():
    params = params_of({"m": (2, 3, 4)})
    before = {k: p.detach().clone() for k, p in params.items()}
    add_ortho_grads(params, 2.0)
    gA, gB = ortho_penalty_grads(before["m.lora_A.weight"], before["m.lora_B.weight"])
    assert torch.equal(params["m.lora_A.weight"].grad, 2.0 * gA)
    assert torch.equal(params["m.lora_B.weight"].grad, 2.0 * gB)
    assert all(torch.equal(p, before[k]) for k, p in params.items())


def test_regulariser_alone_drives_factors_to_orthonormal():
    params = params_of({"m": (3, 6, 5)}, seed=4)
    for p in params.values():
        p.data.mul_(0.3)
    opt = torch.optim.SGD(params.values(), lr=0.02)
    first = add_ortho_grads(params, 1.0)
    for _ in range(500):
        opt.zero_grad(set_to_none=True)
        last = add_ortho_grads(params, 1.0)
        opt.step()
    assert first > 1.0 and last < 1e-8


@pytest.mark.parametrize("weight", [-1.0, float("nan"), float("inf")])
def test_bad_weight_is_refused(weight):
    with pytest.raises(ValueError, match="weight"):
        add_ortho_grads(params_of({"m": (2, 3, 4)}), weight)


def test_pairs_and_key_errors():
    keys = ["a.lora_A.weight", "a.lora_B.weight", "b.lora_B.client1.weight", "b.lora_A.client1.weight"]
    assert lora_pairs(keys) == {"a": ("a.lora_A.weight", "a.lora_B.weight"),
                                "b": ("b.lora_A.client1.weight", "b.lora_B.client1.weight")}
    with pytest.raises(ValueError, match="'a.bias' is not a LoRA factor"):
        lora_pairs(["a.lora_A.weight", "a.lora_B.weight", "a.bias"])
    with pytest.raises(ValueError, match="'c.lora_A.weight' has no partner 'c.lora_B.weight'"):
        lora_pairs(["c.lora_A.weight"])
    with pytest.raises(ValueError, match="'c.lora_B.x.weight' has no partner"):
        lora_pairs(["c.lora_B.x.weight", "c.lora_A.y.weight"])
    with pytest.raises(ValueError, match="'m.lora_A.c0.weight' and 'm.lora_A.c1.weight' are two LoRA factors of"):
        lora_pairs(["m.lora_A.c0.weight", "m.lora_B.c0.weight", "m.lora_A.c1.weight", "m.lora_B.c1.weight"])
    with pytest.raises(ValueError, match=r"lora_A\(2, 3\) and lora_B\(4, 3\)"):
        ortho_penalty(torch.zeros(2, 3), torch.zeros(4, 3))


@pytest.mark.parametrize("arch, d_out", [("gpt2", 3 * 64), ("llama", 64)])
def test_real_peft_adapter_pairs_as_r_by_d_in_and_d_out_by_r(arch, d_out):
    model = tiny_causal_lm(arch, vocab_size=64, n_layers=2)
    add_adapters(model, LoraSettings(rank=2).peft_config(arch), ["client0"])
    params = adapter_parameters(model, "client0")
    pairs = lora_pairs(params)
    assert len(pairs) * 2 == len(params) > 0
    key_a, key_b = next(iter(pairs.values()))
    assert params[key_a].shape == (2, 64) and params[key_b].shape == (d_out, 2)
    assert add_ortho_grads(params, 0.1) > 0
    assert all(p.grad is not None for p in params.values())
