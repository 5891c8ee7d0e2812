"""Device and base dtype: the bytes follow the dtype that crosses the cut, the FLOPs do not move.

The CUDA test runs where torch sees a GPU and is skipped elsewhere.
"""

import pytest
import torch

from llm_split.lora import LoraSettings
from llm_split.models import load_causal_lm
from llm_split.trainer import SplitLoRATrainer

from _batches import left_padded_batch


def trainer(dtype=torch.float32, device="cpu", dropout=0.0, **kwargs):
    model, _ = load_causal_lm("tiny-llama", dtype=dtype)
    return SplitLoRATrainer(model.to(device), cut_layer=2, lora=LoraSettings(rank=4, dropout=dropout), n_clients=2,
                            lr=1e-2, **kwargs)


def batch(seq_len=10):
    input_ids, mask, labels = left_padded_batch(3, seq_len)
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def step(tr, client=0, b=None):
    msg = tr.client_forward(client, b or batch())
    reply = tr.server_step(client, msg)
    tr.client_backward(client, reply)
    return msg, reply


def test_bfloat16_base_halves_the_cut_bytes_and_keeps_the_flops():
    fp32, bf16 = trainer(), trainer(torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in bf16.model.parameters() if not p.requires_grad)
    assert all(t.dtype == torch.float32 for t in bf16.client_adapter_state(0).values())  # adapters stay float32
    msg, reply = step(bf16)
    assert msg.hidden.dtype == torch.bfloat16 and reply.grad.dtype == torch.bfloat16
    hidden = 3 * 10 * 64
    assert msg.nbytes == hidden * 2 + 2 * 3 * 10 * 8  # bfloat16 activations, int64 mask and labels
    assert reply.nbytes == hidden * 2
    assert bf16.cut_message_nbytes(batch()) == {"activation": msg.nbytes, "gradient": reply.nbytes}
    assert fp32.cut_message_nbytes(batch())["gradient"] == hidden * 4
    assert bf16.adapter_nbytes() == fp32.adapter_nbytes()
    assert bf16.step_flops(batch()) == fp32.step_flops(batch())
    assert torch.isfinite(torch.tensor(reply.loss))
    # the step trained the float32 adapter
    assert any(torch.count_nonzero(t) for k, t in bf16.client_adapter_state(0).items() if ".lora_B." in k)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_step_on_the_gpu_measures_what_the_cpu_measures(dtype):
    cpu, gpu = trainer(dtype), trainer(dtype, "cuda")
    assert gpu.step_flops(batch()) == cpu.step_flops(batch())
    assert gpu.cut_message_nbytes(batch()) == cpu.cut_message_nbytes(batch())
    (msg_c, reply_c), (msg_g, reply_g) = step(cpu), step(gpu)
    assert msg_g.hidden.is_cuda and reply_g.grad.is_cuda
    assert (msg_g.nbytes, reply_g.nbytes) == (msg_c.nbytes, reply_c.nbytes)
    assert reply_g.loss == pytest.approx(reply_c.loss, rel=1e-2 if dtype == torch.bfloat16 else 1e-4)
    # Graphs dropped and recomputed on the GPU (its dropout draws restored): what kept graphs give.
    kept, recomputed = trainer(dtype, "cuda", 0.1), trainer(dtype, "cuda", 0.1, graphs_kept=0)
    for tr in (kept, recomputed):
        torch.manual_seed(0)
        msgs = [tr.client_forward(k, batch(seq_len=8)) for k in range(2)]
        for k in (1, 0):
            tr.client_backward(k, tr.server_step(k, msgs[k]))
    for k in range(2):
        a, b = kept.client_adapter_state(k), recomputed.client_adapter_state(k)
        assert all(torch.equal(a[n], b[n]) for n in a)
