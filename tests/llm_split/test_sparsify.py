"""Sparsified uploads: the right components and entries, their bytes by hand, and the server's merge rules."""

import math

import pytest
import torch

from llm_split.fedavg import fedavg_state_dicts
from llm_split.payload import state_dict_nbytes
from llm_split.aggregate import average_product, average_product_with_errors, complete, merge
from llm_split.sparsify import Selection, component_importance, dense_selection, randomk_select, soft_select, topk_select


def lora_state(modules, seed=0, dtype=torch.float32):
    """Random factors; ``modules`` maps name -> (r, d_in, d_out)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, (r, d_in, d_out) in modules.items():
        state[f"{name}.lora_A.weight"] = torch.randn(r, d_in, generator=g).to(dtype)
        state[f"{name}.lora_B.weight"] = torch.randn(d_out, r, generator=g).to(dtype)
    return state


MODULES = {"blocks.0.self_attn.q_proj": (8, 16, 12), "blocks.0.self_attn.v_proj": (4, 16, 6),
           "blocks.1.self_attn.q_proj": (5, 7, 9)}


# -- SOFT: rank components ------------------------------------------------------


def test_importance_is_column_norm_times_row_norm_and_the_singular_values_when_orthogonal():
    A, B = torch.tensor([[3.0, 4.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    # ||B[:,0]|| ||A[0,:]|| = 1 * 5;  ||B[:,1]|| ||A[1,:]|| = 2 * 1
    assert torch.equal(component_importance(A, B), torch.tensor([5.0, 2.0], dtype=torch.float64))
    g = torch.Generator().manual_seed(0)
    Q_a = torch.linalg.qr(torch.randn(10, 3, generator=g, dtype=torch.float64)).Q.T  # orthonormal rows
    Q_b = torch.linalg.qr(torch.randn(7, 3, generator=g, dtype=torch.float64)).Q  # orthonormal columns
    planted = torch.tensor([0.5, 3.0, 1.5], dtype=torch.float64)
    A, B = planted[:, None] * Q_a, Q_b * torch.tensor([2.0, 1.0, 4.0], dtype=torch.float64)
    singular = torch.linalg.svdvals(B @ A)[:3]  # rank 3
    torch.testing.assert_close(torch.sort(component_importance(A, B), descending=True).values, singular)


@pytest.mark.parametrize("sparsity", [0.0, 0.2, 0.5, 0.75, 0.9, 0.99])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_keeps_exactly_the_most_important_components(sparsity, seed):
    state = lora_state(MODULES, seed=seed)
    sel = soft_select(state, sparsity)
    for name, (r, d_in, d_out) in MODULES.items():
        A, B = state[f"{name}.lora_A.weight"], state[f"{name}.lora_B.weight"]
        # Brute force: every component's importance by a loop, sorted.
        imp = [math.dist(B[:, j].tolist(), [0] * d_out) * math.dist(A[j].tolist(), [0] * d_in) for j in range(r)]
        keep = math.ceil((1 - sparsity) * r - 1e-9)
        expected = sorted(sorted(range(r), key=lambda j: -imp[j])[:keep])
        rows = sel.masks[f"{name}.lora_A.weight"]
        cols = sel.masks[f"{name}.lora_B.weight"]
        assert rows.all(dim=1).nonzero().flatten().tolist() == expected
        assert int(rows.any(dim=1).sum()) == keep  # whole rows or nothing
        assert cols.all(dim=0).nonzero().flatten().tolist() == expected
        assert int(cols.any(dim=0).sum()) == keep
    assert sel.components_total == 8 + 4 + 5
    assert sel.components_kept == sum(math.ceil((1 - sparsity) * r - 1e-9) for r, _, _ in MODULES.values())
    assert sel.kept == sum(int(m.sum()) for m in sel.masks.values())
    assert sel.total == sum(t.numel() for t in state.values())


def test_soft_finds_planted_components_and_breaks_ties_by_index():
    r, d_in, d_out = 6, 5, 4
    A = torch.ones(r, d_in)
    B = torch.ones(d_out, r) * torch.tensor([1.0, 7.0, 3.0, 7.0, 0.5, 3.0])  # importances 1 7 3 7 .5 3 (x sqrt(20))
    state = {"m.lora_A.weight": A, "m.lora_B.weight": B}
    keeps = {0.5: [1, 2, 3], 0.4: [1, 2, 3, 5], 0.7: [1, 3], 0.9: [1], 0.0: [0, 1, 2, 3, 4, 5]}
    for sparsity, expected in keeps.items():
        mask = soft_select(state, sparsity).masks["m.lora_A.weight"]
        assert mask.all(dim=1).nonzero().flatten().tolist() == expected, sparsity


def test_soft_bytes_by_hand():
    state = {
        # q: r = 8, d_in = 16, d_out = 12, float32
        "q.lora_A.weight": torch.randn(8, 16), "q.lora_B.weight": torch.randn(12, 8),
        # v: r = 4, d_in = 10, d_out = 6, A in float16 and B in float32
        "v.lora_A.weight": torch.randn(4, 10).half(), "v.lora_B.weight": torch.randn(6, 4),
    }
    sel = soft_select(state, 0.75)
    # q keeps ceil(0.25 * 8) = 2 components: 2 * (16 + 12) * 4 = 224 value bytes, 2 * ceil(log2 8) = 6 bits -> 1 byte.
    # v keeps ceil(0.25 * 4) = 1 component: 1 * (10 * 2 + 6 * 4) = 44 value bytes, 1 * 2 bits -> 1 byte.
    assert (sel.value_bytes, sel.index_bytes, sel.nbytes) == (224 + 44, 2, 270)
    assert (sel.kept, sel.total) == (2 * 28 + 1 * 16, 8 * 28 + 4 * 16)
    assert (sel.components_kept, sel.components_total) == (3, 12)
    assert sel.sparsity == 0.75
    # r = 16 at sparsity 0.25: 12 components, 12 * 4 bits = 6 bytes; r = 5 at 0.5: 3 components, 9 bits -> 2 bytes.
    assert soft_select(lora_state({"m": (16, 3, 2)}), 0.25).index_bytes == 6
    sel5 = soft_select(lora_state({"m": (5, 3, 2)}), 0.5)
    assert (sel5.index_bytes, sel5.value_bytes, sel5.components_kept) == (2, 3 * 5 * 4, 3)
    # r = 1: the one component is always sent, so no index.
    assert soft_select(lora_state({"m": (1, 3, 2)}), 0.9).index_bytes == 0


@pytest.mark.parametrize("select", [
    lambda s: soft_select(s, 0.0),
    lambda s: topk_select(s, {k: torch.zeros_like(v) for k, v in s.items()}, 0.0),
    lambda s: randomk_select(s, 0.0, torch.Generator().manual_seed(0)),
    dense_selection,
])
def test_sparsity_zero_sends_everything_at_dense_bytes_and_merges_as_fedavg(select):
    clients = [lora_state(MODULES, seed=k) for k in range(3)]
    global_state = lora_state(MODULES, seed=9)
    sels = [select(c) for c in clients]
    for sel, c in zip(sels, clients):
        assert all(bool(m.all()) for m in sel.masks.values())
        assert sel.nbytes == sel.value_bytes == state_dict_nbytes(c) and sel.index_bytes == 0
        assert sel.kept == sel.total and sel.sparsity == 0.0
    weights = [3, 5, 7]
    expected = fedavg_state_dicts(clients, weights)
    for rule in ("unchanged", "senders"):
        merged = merge(global_state, clients, sels, weights, rule=rule)
        assert list(merged) == list(expected)
        assert all(torch.equal(merged[k], expected[k]) and merged[k].dtype == expected[k].dtype for k in expected)


@pytest.mark.parametrize("sparsity", [0.3, 0.9])
def test_soft_selection_merged_keeps_unsent_components_at_the_global_value(sparsity):
    global_state = lora_state(MODULES, seed=5)
    client = lora_state(MODULES, seed=6)
    sel = soft_select(client, sparsity)
    merged = merge(global_state, [client], [sel], [1.0])
    for key, mask in sel.masks.items():
        assert torch.equal(merged[key][mask], client[key][mask])
        assert torch.equal(merged[key][~mask], global_state[key][~mask])


# -- entry sparsifiers ----------------------------------------------------------


@pytest.mark.parametrize("sparsity", [0.1, 0.5, 0.9, 0.999])
def test_topk_keeps_exactly_the_largest_changes(sparsity):
    state = lora_state(MODULES, seed=1)
    reference = lora_state(MODULES, seed=2)
    sel = topk_select(state, reference, sparsity)
    for key, t in state.items():
        change = (t - reference[key]).abs().flatten().tolist()
        keep = math.ceil((1 - sparsity) * len(change) - 1e-9)
        expected = sorted(sorted(range(len(change)), key=lambda i: (-change[i], i))[:keep])
        assert sel.masks[key].flatten().nonzero().flatten().tolist() == expected
    assert sel.components_kept == sel.components_total == 0


def test_topk_ties_go_to_the_lower_index_and_reference_is_checked():
    state = {"w": torch.tensor([1.0, 3.0, 3.0, 2.0, 3.0])}
    sel = topk_select(state, {"w": torch.zeros(5)}, 0.6)  # keep 2 of 5
    assert sel.masks["w"].tolist() == [False, True, True, False, False]
    unchanged = topk_select({"w": torch.ones(10)}, {"w": torch.ones(10)}, 0.5)  # all changes 0: the first 5
    assert unchanged.masks["w"].tolist() == [True] * 5 + [False] * 5
    diverged = topk_select({"w": torch.tensor([5.0, float("nan"), -7.0])}, {"w": torch.zeros(3)}, 0.6)
    assert diverged.masks["w"].tolist() == [False, True, True]
    with pytest.raises(ValueError, match=r"reference\['w'\] has shape \(4,\), state has \(5,\)"):
        topk_select(state, {"w": torch.zeros(4)}, 0.5)
    with pytest.raises(ValueError, match="missing \\['w'\\]"):
        topk_select(state, {"v": torch.zeros(5)}, 0.5)


def test_entry_bytes_by_hand():
    state = {"a": torch.randn(10, 10), "b": torch.randn(4, 4), "c": torch.randn(3).double()}
    ref = {k: torch.zeros_like(v) for k, v in state.items()}
    sel = topk_select(state, ref, 0.9)
    # a: keep ceil(0.1 * 100) = 10 -> 40 value bytes; index min(100, 10 * 7) = 70 bits -> 9 bytes.
    # b: keep ceil(1.6) = 2 -> 8 value bytes; index min(16, 2 * 4) = 8 bits -> 1 byte.
    # c: keep ceil(0.3) = 1 float64 -> 8 value bytes; index min(3, 1 * 2) = 2 bits -> 1 byte.
    assert (sel.value_bytes, sel.index_bytes, sel.nbytes, sel.kept, sel.total) == (56, 11, 67, 13, 119)
    sel = randomk_select(state, 0.5, torch.Generator().manual_seed(0))
    # a: 50 kept, 200 value bytes, min(100, 350) bits: the bitmask, 13 bytes.
    # b: 8 kept, 32 bytes, min(16, 32) = 16 bits, 2 bytes.  c: 2 kept, 16 bytes, min(3, 4) bits -> 1 byte.
    assert (sel.value_bytes, sel.index_bytes, sel.nbytes, sel.kept) == (248, 16, 264, 60)


def test_randomk_counts_reproducibility_and_uniformity():
    state = lora_state(MODULES)
    a = randomk_select(state, 0.7, torch.Generator().manual_seed(1))
    b = randomk_select(state, 0.7, torch.Generator().manual_seed(1))
    c = randomk_select(state, 0.7, torch.Generator().manual_seed(2))
    assert all(torch.equal(a.masks[k], b.masks[k]) for k in state)
    assert any(not torch.equal(a.masks[k], c.masks[k]) for k in state)
    seeded = randomk_select(state, 0.7, 1)  # an int seed draws as a generator seeded with it
    assert all(torch.equal(a.masks[k], seeded.masks[k]) for k in state)
    for key, t in state.items():
        assert int(a.masks[key].sum()) == math.ceil(0.3 * t.numel() - 1e-9)
    # Each of 10 positions is sent with probability 3/10: 2000 draws, counts 600 +- 5 sigma (sigma = 20.5).
    g = torch.Generator().manual_seed(3)
    counts = sum(randomk_select({"w": torch.zeros(10)}, 0.7, g).masks["w"].long() for _ in range(2000))
    assert counts.sum() == 6000 and (counts - 600).abs().max() < 5 * 20.5


@pytest.mark.parametrize("sparsity", [-0.1, 1.0, 1.5])
def test_bad_sparsity_is_refused(sparsity):
    state = lora_state({"m": (2, 3, 4)})
    for select in (lambda: soft_select(state, sparsity), lambda: topk_select(state, state, sparsity),
                   lambda: randomk_select(state, sparsity, torch.Generator())):
        with pytest.raises(ValueError, match=r"sparsity\(=.*\) must be in \[0, 1\)"):
            select()


def test_soft_refuses_non_lora_keys_naming_them():
    state = lora_state({"m": (2, 3, 4)})
    with pytest.raises(ValueError, match="'m.bias' is not a LoRA factor"):
        soft_select({**state, "m.bias": torch.zeros(4)}, 0.5)
    with pytest.raises(ValueError, match="'m.lora_A.weight' has no partner"):
        soft_select({"m.lora_A.weight": state["m.lora_A.weight"]}, 0.5)


# -- merge --------------------------------------------------------------------


def test_merge_by_hand():
    g = {"w": torch.tensor([1.0, 1.0, 1.0, 1.0])}
    x1, m1 = {"w": torch.tensor([4.0, 8.0, 12.0, 16.0])}, {"w": torch.tensor([True, False, True, False])}
    x2, m2 = {"w": torch.tensor([2.0, 2.0, 2.0, 2.0])}, {"w": torch.tensor([True, True, False, False])}
    # weights 1 : 3 -> 0.25, 0.75
    # unchanged: [.25*4 + .75*2, .25*1 + .75*2, .25*12 + .75*1, .25*1 + .75*1] = [2.5, 1.75, 3.75, 1]
    merged = merge(g, [x1, x2], [m1, m2], [1, 3])
    assert torch.equal(merged["w"], torch.tensor([2.5, 1.75, 3.75, 1.0]))
    # senders: [2.5 (both), 2 (client 2 alone), 12 (client 1 alone), 1 (nobody: global)]
    merged = merge(g, [x1, x2], [m1, m2], [1, 3], rule="senders")
    assert torch.equal(merged["w"], torch.tensor([2.5, 2.0, 12.0, 1.0]))
    # A zero-weight sender counts as nobody.
    merged = merge(g, [x1, x2], [m1, m2], [0, 1], rule="senders")
    assert torch.equal(merged["w"], torch.tensor([2.0, 2.0, 1.0, 1.0]))


def test_complete_fills_what_was_not_sent_from_the_broadcast():
    g = {"w": torch.tensor([1.0, 1.0, 1.0, 1.0])}
    x = {"w": torch.tensor([4.0, 8.0, 12.0, 16.0])}
    sel = topk_select(x, g, 0.5)  # the two that changed most: 12 and 16
    assert complete(g, x, sel)["w"].tolist() == [1.0, 1.0, 12.0, 16.0]
    with pytest.raises(ValueError, match="shape"):
        complete({"w": torch.zeros(3)}, x, sel)


def test_merge_takes_selections_and_returns_the_clients_dtype():
    g = {"w": torch.zeros(3, dtype=torch.float64)}
    x = {"w": torch.tensor([1.0, 2.0, 3.0], dtype=torch.bfloat16)}
    sel = topk_select(x, {"w": torch.zeros(3)}, 0.5)  # keeps 2: entries 2 and 1
    merged = merge(g, [x], [sel], [1])
    assert merged["w"].dtype == torch.bfloat16 and merged["w"].tolist() == [0.0, 2.0, 3.0]


def test_merge_refuses_mismatches_clearly():
    g = {"a": torch.zeros(2, 3), "b": torch.zeros(4)}
    x = {"a": torch.ones(2, 3), "b": torch.ones(4)}
    ok = dense_selection(x)
    with pytest.raises(ValueError, match=r"client state 1 has keys different from the global state: missing \['b'\]"):
        merge(g, [x, {"a": torch.ones(2, 3)}], [ok, ok], [1, 1])
    with pytest.raises(ValueError, match=r"client state 0\['a'\] has shape \(3, 2\), the global state has \(2, 3\)"):
        merge(g, [{"a": torch.ones(3, 2), "b": torch.ones(4)}], [ok], [1])
    with pytest.raises(ValueError, match=r"selection 0\['b'\] has shape \(5,\)"):
        merge(g, [x], [{"a": ok.masks["a"], "b": torch.ones(5, dtype=torch.bool)}], [1])
    with pytest.raises(ValueError, match=r"selection 0\['a'\] must be a bool mask"):
        merge(g, [x], [{"a": torch.ones(2, 3), "b": ok.masks["b"]}], [1])
    with pytest.raises(ValueError, match="2 client states, 1 selections and 2 weights"):
        merge(g, [x, x], [ok], [1, 1])
    with pytest.raises(ValueError, match="rule"):
        merge(g, [x], [ok], [1], rule="mean")
    with pytest.raises(ValueError, match="weights"):
        merge(g, [x], [ok], [-1])


# -- average the product ---------------------------------------------------------


def product(state, name):
    return state[f"{name}.lora_B.weight"].double() @ state[f"{name}.lora_A.weight"].double()


def test_identical_clients_give_back_their_product():
    state = lora_state(MODULES, seed=3)
    out, errors = average_product_with_errors([state, state, state], [1, 2, 3], rank=4)
    for name, (r, d_in, d_out) in MODULES.items():
        assert out[f"{name}.lora_A.weight"].shape == (4, d_in) and out[f"{name}.lora_A.weight"].dtype == torch.float32
        assert out[f"{name}.lora_B.weight"].shape == (d_out, 4)
        if r <= 4:
            torch.testing.assert_close(product(out, name), product(state, name), rtol=1e-5, atol=1e-5)
            assert errors[name] == 0.0
        else:
            assert errors[name] > 0
    assert list(out) == list(state)


def test_rank_one_updates_truncate_without_error():
    g = torch.Generator().manual_seed(4)
    u, v = torch.randn(6, 1, generator=g, dtype=torch.float64), torch.randn(1, 5, generator=g, dtype=torch.float64)
    clients = [{"m.lora_A.weight": c * v, "m.lora_B.weight": u} for c in (1.0, -0.5, 2.0)]
    out, errors = average_product_with_errors(clients, [1, 1, 2], rank=1)
    assert errors == {"m": 0.0}
    torch.testing.assert_close(product(out, "m"), (0.25 - 0.125 + 1.0) * u @ v, rtol=1e-12, atol=1e-12)
    # Three different rank-1 updates: rank 3 holds them exactly, rank 2 does not.
    clients = [lora_state({"m": (1, 5, 6)}, seed=s, dtype=torch.float64) for s in range(3)]
    assert average_product_with_errors(clients, [1, 1, 1], rank=3)[1] == {"m": 0.0}
    assert average_product_with_errors(clients, [1, 1, 1], rank=2)[1]["m"] > 0.01


@pytest.mark.parametrize("rank", [1, 2, 3, 5, 12])
def test_generic_clients_give_the_svd_truncation_of_the_averaged_product(rank):
    # Client ranks 3, 2 and 4 (heterogeneous), each with its own LoRA scale.
    clients = [lora_state({"m": (r, 9, 7)}, seed=s, dtype=torch.float64) for s, r in enumerate((3, 2, 4))]
    weights, scales = [2.0, 1.0, 1.0], [0.5, 2.0, 1.0]
    w = [x / sum(weights) for x in weights]
    M = sum(wk * sk * product(c, "m") for wk, sk, c in zip(w, scales, clients))
    U, S, Vh = torch.linalg.svd(M, full_matrices=False)
    best = U[:, :rank] @ torch.diag(S[:rank]) @ Vh[:rank]
    out, errors = average_product_with_errors(clients, weights, rank=rank, scale=scales)
    assert out["m.lora_A.weight"].shape == (rank, 9) and out["m.lora_B.weight"].shape == (7, rank)
    torch.testing.assert_close(product(out, "m"), best, rtol=1e-10, atol=1e-10)
    tail = (S[rank:].square().sum() / S.square().sum()).sqrt().item()
    assert errors["m"] == pytest.approx(tail, abs=1e-12)
    assert (errors["m"] == 0.0) == (rank >= 7)  # M has rank min(3 + 2 + 4, 7, 9) = 7
    # Balanced factors: B^T B = A A^T = diag(S_r).
    A, B = out["m.lora_A.weight"], out["m.lora_B.weight"]
    torch.testing.assert_close(B.T @ B, A @ A.T, rtol=1e-10, atol=1e-10)
    # Never worse than multiplying the FedAvg'd factors (rank <= r too), when ranks agree.
    if rank == 3:
        same = [lora_state({"m": (3, 9, 7)}, seed=s, dtype=torch.float64) for s in range(3)]
        avg = fedavg_state_dicts(same, weights)
        M = sum(wk * product(c, "m") for wk, c in zip(w, same))
        assert (product(average_product(same, weights, rank=3), "m") - M).norm() < (product(avg, "m") - M).norm()


def test_average_product_refuses_bad_input():
    a = lora_state({"m": (2, 3, 4)})
    with pytest.raises(ValueError, match="rank"):
        average_product([a], [1], rank=0)
    with pytest.raises(ValueError, match="'m.bias' is not a LoRA factor"):
        average_product([{**a, "m.bias": torch.zeros(4)}], [1], rank=2)
    with pytest.raises(ValueError, match="client state 1: m: lora_B"):
        average_product([a, lora_state({"m": (2, 5, 4)})], [1, 1], rank=2)
    with pytest.raises(ValueError, match="2 scales for 1 clients"):
        average_product([a], [1], rank=2, scale=[1.0, 2.0])
    with pytest.raises(ValueError, match="1 client states but 2 weights"):
        average_product([a], [1, 1], rank=2)


def test_selection_sparsity_property():
    sel = Selection({}, nbytes=0, value_bytes=0, index_bytes=0, kept=0, total=0)
    assert sel.sparsity == 0.0
    assert Selection({}, 10, 10, 0, kept=1, total=4).sparsity == 0.75
