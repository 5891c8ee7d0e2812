"""FedAvg of adapters: against a hand computation, and the broadcast to every client."""

import pytest
import torch

from llm_split.fedavg import fedavg_state_dicts, normalise_weights
from llm_split.lora import LoraSettings
from llm_split.models import tiny_causal_lm
from llm_split.trainer import SplitLoRATrainer


def test_weighted_average_by_hand():
    a = {"x": torch.tensor([1.0, 2.0]), "y": torch.tensor([[0.0, 4.0]])}
    b = {"x": torch.tensor([5.0, -2.0]), "y": torch.tensor([[8.0, 0.0]])}
    avg = fedavg_state_dicts([a, b], [1, 3])
    # x: (1*1 + 3*5)/4 = 4, (1*2 + 3*-2)/4 = -1;  y: (0 + 24)/4 = 6, (4 + 0)/4 = 1
    assert torch.equal(avg["x"], torch.tensor([4.0, -1.0]))
    assert torch.equal(avg["y"], torch.tensor([[6.0, 1.0]]))
    assert avg["x"].dtype == torch.float32


def test_weights_are_normalised():
    a, b = {"w": torch.tensor([0.0])}, {"w": torch.tensor([1.0])}
    assert normalise_weights([2, 6]) == [0.25, 0.75]
    for weights in ([1, 3], [2, 6], [0.25, 0.75], [100, 300]):
        assert torch.equal(fedavg_state_dicts([a, b], weights)["w"], torch.tensor([0.75]))
    assert torch.equal(fedavg_state_dicts([a, b], [1, 0])["w"], torch.tensor([0.0]))


@pytest.mark.parametrize("weights", [[1, -1], [0, 0], []])
def test_bad_weights_are_refused(weights):
    sds = [{"w": torch.zeros(1)} for _ in weights]
    with pytest.raises(ValueError, match="weights|at least one"):
        fedavg_state_dicts(sds, weights)


def test_mismatched_keys_are_refused():
    with pytest.raises(ValueError, match="keys"):
        fedavg_state_dicts([{"w": torch.zeros(1)}, {"v": torch.zeros(1)}], [1, 1])


def test_trainer_fedavg_averages_each_side_and_broadcasts_to_all_clients():
    model = tiny_causal_lm("llama", vocab_size=64, n_layers=4)
    tr = SplitLoRATrainer(model, cut_layer=2, lora=LoraSettings(rank=2), n_clients=3, lr=1e-3)
    # Client k holds the constant k+1 on the client side and 10(k+1) on the server side.
    for k in range(3):
        tr.set_client_adapter_state(k, {n: torch.full_like(t, k + 1.0) for n, t in tr.client_adapter_state(k).items()})
        tr.set_server_adapter_state(k, {n: torch.full_like(t, 10.0 * (k + 1)) for n, t in tr.server_adapter_state(k).items()})
    tr.fedavg({0: 10, 2: 30})  # client 1 took no part, but receives the average
    for k in range(3):
        assert all(torch.all(t == (10 * 1 + 30 * 3) / 40) for t in tr.client_adapter_state(k).values())
        assert all(torch.all(t == (10 * 10 + 30 * 30) / 40) for t in tr.server_adapter_state(k).values())


def test_trainer_fedavg_after_training_makes_clients_equal():
    model = tiny_causal_lm("gpt2", vocab_size=64, n_layers=2)
    tr = SplitLoRATrainer(model, cut_layer=1, lora=LoraSettings(rank=2), n_clients=2, lr=1e-2)
    for k in range(2):
        ids = torch.randint(0, 64, (2, 6), generator=torch.Generator().manual_seed(k))
        b = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
        tr.client_backward(k, tr.server_step(k, tr.client_forward(k, b)))
    before = [tr.client_adapter_state(k) for k in range(2)]
    tr.fedavg({0: 1, 1: 1})
    for side in (tr.client_adapter_state, tr.server_adapter_state):
        a, b = side(0), side(1)
        assert all(torch.equal(a[n], b[n]) for n in a)
    after = tr.client_adapter_state(0)
    assert all(torch.allclose(after[n], (before[0][n] + before[1][n]) / 2) for n in after)
    with pytest.raises(ValueError, match="client"):
        tr.fedavg({5: 1.0})
