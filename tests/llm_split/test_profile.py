"""The profiled cost table against direct measurements of the split step and hand formulas."""

import numpy as np
import pytest
import torch

import solver
from cosim.errors import CosimError
from llm_split.lora import LoraSettings
from llm_split.models import tiny_causal_lm
from llm_split.profile import profile_costs, synthetic_batch
from llm_split.trainer import SplitLoRATrainer

VOCAB, LAYERS, HIDDEN = 128, 4, 64
B, T = 2, 8
CUTS, RANKS = [3, 1, 2], [2, 4]


def padded_batch():
    batch = synthetic_batch(vocab_size=VOCAB, batch_size=B, seq_len=T)
    batch["attention_mask"][0, :3] = 0  # left padding, as the encoder pads
    batch["labels"][0, :3] = -100
    return batch


def factory(arch, calls=None):
    def make():
        if calls is not None:
            calls.append(1)
        return tiny_causal_lm(arch, vocab_size=VOCAB, n_layers=LAYERS, hidden_size=HIDDEN)
    return make


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def profiled(request):
    calls = []
    costs = profile_costs(factory(request.param, calls), cuts=CUTS, ranks=RANKS, lora=LoraSettings(rank=99),
                          batch=padded_batch())
    return request.param, costs, calls


def test_assembled_flops_equal_a_direct_step_measurement(profiled):
    arch, costs, _ = profiled
    for cut, rank in [(1, 2), (3, 4), (2, 4)]:
        i, j = CUTS.index(cut), RANKS.index(rank)
        trainer = SplitLoRATrainer(factory(arch)(), cut_layer=cut, lora=LoraSettings(rank=rank), n_clients=1, lr=1e-3)
        step = trainer.step_flops(padded_batch())
        assert costs["client_forward_flops"][i, j] == step.client_forward
        assert costs["client_backward_flops"][i, j] == step.client_backward
        assert costs["server_flops"][i, j] == step.server_forward_backward
        assert costs["client_adapter_bytes"][i, j] == trainer.adapter_nbytes()["client"]


def test_one_fresh_model_per_rank_and_a_valid_cost_table(profiled):
    _, costs, calls = profiled
    assert len(calls) == len(RANKS)
    table = solver.CostTable(**costs)
    assert table.grid_shape == (3, 2)
    assert costs["cuts"].tolist() == CUTS and costs["ranks"].tolist() == RANKS
    order = np.argsort(CUTS)
    # Moving the cut deeper moves work from the server to the client, and rank adds work everywhere.
    assert np.all(np.diff(costs["client_forward_flops"][order], axis=0) > 0)
    assert np.all(np.diff(costs["server_flops"][order], axis=0) < 0)
    assert np.all(np.diff(costs["client_backward_flops"], axis=1) > 0)


def test_bytes_match_hand_formulas(profiled):
    arch, costs, _ = profiled
    hidden = B * T * HIDDEN * 4  # float32
    np.testing.assert_array_equal(costs["activation_bytes"], hidden + 2 * B * T * 8)  # + int64 mask and labels
    np.testing.assert_array_equal(costs["gradient_bytes"], hidden)
    # Adapters per layer, r (d_in + d_out) float32 weights per adapted matrix:
    # llama: q (H -> H) and v (H -> H/2: 2 of 4 heads share keys and values); gpt2: c_attn (H -> 3H).
    per_rank_layer = {"llama": (HIDDEN + HIDDEN) + (HIDDEN + HIDDEN // 2), "gpt2": HIDDEN + 3 * HIDDEN}[arch] * 4
    expected = np.outer(CUTS, RANKS) * per_rank_layer
    np.testing.assert_array_equal(costs["client_adapter_bytes"], expected)


def test_bad_cuts_and_ranks_are_user_errors():
    lora = LoraSettings()
    with pytest.raises(CosimError, match=r"cuts: expected integers in 1\.\.3.*\(got 4\)"):
        profile_costs(factory("llama"), cuts=[1, 4], ranks=[2], lora=lora, batch=padded_batch())
    with pytest.raises(CosimError, match="ranks: expected distinct integers >= 1"):
        profile_costs(factory("llama"), cuts=[1], ranks=[2, 2], lora=lora, batch=padded_batch())
    with pytest.raises(CosimError, match="cuts: expected distinct integers >= 1"):
        profile_costs(factory("llama"), cuts=[0], ranks=[2], lora=lora, batch=padded_batch())


def test_profiling_leaves_the_global_random_stream_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    profile_costs(factory("llama"), cuts=[2], ranks=[2], lora=LoraSettings(dropout=0.1), batch=padded_batch())
    assert torch.equal(torch.rand(3), expected)
