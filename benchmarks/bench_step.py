"""The split step with the LM head on every position (before) and only where a label is set (now).

SmolLM2-135M as in the quickstart (cut 3, rank 8 on q/k/v/o, IMDB prompts of 64
tokens, batch 4: one labelled position per row). Times ``--steps`` real split
steps (client forward, server forward/backward/AdamW, client backward) with each
loss, alternating the two ``--repeat`` times and keeping the fastest of each
(a busy machine disturbs both alike), and prints the wall time per step, the
speed-up, the measured FLOPs per step of each, and the two losses of one same
step from the same weights.

    .venv/bin/python benchmarks/bench_step.py [--steps 6] [--repeat 3] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def full_head_loss(server_part):
    """The server's loss as it was: logits (B, T, V) on every position, then the shifted cross-entropy."""
    return lambda hidden, mask, labels: server_part(hidden, attention_mask=mask, labels=labels).loss


def _sync() -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def time_steps(trainer, batches, mode: str) -> float:
    """Seconds per split step over ``batches`` (one client per batch), LM head ``mode``."""
    part = trainer.server_part
    if mode == "before":
        part.label_loss = full_head_loss(part)  # instance attribute: shadows the method
    try:
        _sync()
        t0 = time.perf_counter()
        for k, batch in enumerate(batches):
            trainer.client_backward(k, trainer.server_step(k, trainer.client_forward(k, batch)))
        _sync()  # on a GPU the last kernels may still be running
        return (time.perf_counter() - t0) / len(batches)
    finally:
        part.__dict__.pop("label_loss", None)


def gradient_difference(trainer, batch) -> float:
    """Largest difference between the two losses' gradients: server-side LoRA weights and the cut gradient."""
    msg = trainer.client_forward(0, batch)
    trainer.cancel(0)
    trainer.use(0)
    params = list(trainer.server_parameters(0).values())
    grads = {}
    for mode in ("before", "now"):
        hidden = msg.hidden.detach().requires_grad_(True)
        loss = full_head_loss(trainer.server_part) if mode == "before" else trainer.server_part.label_loss
        loss(hidden, msg.attention_mask, msg.labels).backward()
        grads[mode] = [hidden.grad] + [p.grad.clone() for p in params]
        trainer.model.zero_grad(set_to_none=True)
        for p in params:
            p.grad = None
    return max(float((a - b).abs().max()) for a, b in zip(grads["before"], grads["now"]))


def step_flops(trainer, batch, mode: str) -> float:
    from llm_split.flops import FlopCounter

    device = next(trainer.model.parameters()).device
    ids, mask, labels = (batch[k].to(device) for k in ("input_ids", "attention_mask", "labels"))
    hidden = trainer.client_part(ids, attention_mask=mask).detach()
    hidden.requires_grad_(True)
    loss = full_head_loss(trainer.server_part) if mode == "before" else trainer.server_part.label_loss
    with FlopCounter() as counter:
        loss(hidden, mask, labels).backward()
    trainer.model.zero_grad(set_to_none=True)  # leave no gradient for a later optimizer step
    return counter.total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6, help="split steps per timing (default 6)")
    ap.add_argument("--repeat", type=int, default=3, help="alternate before / now this many times (default 3)")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()

    import torch

    from cosim.scenario import load_scenario
    from cosim.workloads.split_lora import SplitLoRAWorkload

    sc = load_scenario(ROOT / "scenarios" / "quickstart.yaml",
                       overrides=[f"clients.count={args.steps}", "compute.client_flops_per_s=1e12",
                                  "data.test_size=8"] + args.overrides)
    wl = SplitLoRAWorkload.from_scenario(sc)  # sets runtime.threads
    tr, task = wl.trainer, wl.task
    batches = []
    for k in range(args.steps):
        idx = wl.samplers[k].next_indices()
        batches.append(wl.encoder.encode([task.train_texts[i] for i in idx], task.train_labels[idx]))
    b, t = batches[0]["input_ids"].shape
    labelled = int((batches[0]["labels"][:, 1:] != -100).sum())
    print(f"{sc.model.name}: cut {sc.split.cut_layer}, rank {sc.lora.rank}, batch {b} x {t} tokens, "
          f"{labelled} labelled positions of {b * t}; runtime.device {sc.runtime.device}"
          f"{' (' + torch.cuda.get_device_name() + ')' if torch.cuda.is_available() else ''}, base_dtype "
          f"{sc.runtime.base_dtype}; torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)

    # The same steps from the same weights, both ways: the losses.
    differences = []
    for k, batch in enumerate(batches):
        msg = tr.client_forward(k, batch)
        with torch.no_grad():
            now = tr.server_part.label_loss(msg.hidden, msg.attention_mask, msg.labels).item()
            before = full_head_loss(tr.server_part)(msg.hidden, msg.attention_mask, msg.labels).item()
        tr.cancel(k)
        differences.append(abs(now - before))
        print(f"loss of step {k}: before {before:.9f}, now {now:.9f} (difference {differences[-1]:.2e})")
    print(f"largest loss difference {max(differences):.2e} (target <= 1e-6)")
    print(f"largest gradient difference (server LoRA weights, cut activations) of step 0: "
          f"{gradient_difference(tr, batches[0]):.2e} (target <= 1e-6)")
    flops = {mode: step_flops(tr, batches[0], mode) for mode in ("before", "now")}
    client = tr.step_flops(batches[0])
    for mode in ("before", "now"):
        total = client.client_forward + client.client_backward + flops[mode]
        print(f"measured FLOPs {mode:>6}: server {flops[mode] / 1e9:7.2f} GFLOP, step {total / 1e9:7.2f} GFLOP")
    print(f"counted FLOPs drop: server step {1 - flops['now'] / flops['before']:.1%}, whole step "
          f"{(flops['before'] - flops['now']) / (client.client_forward + client.client_backward + flops['before']):.1%}")

    time_steps(tr, batches[:1], "now")  # warm-up (first-touch of the weights, allocator)
    best = {"before": float("inf"), "now": float("inf")}
    for i in range(args.repeat):
        for mode in ("before", "now"):
            s = time_steps(tr, batches, mode)
            best[mode] = min(best[mode], s)
            print(f"  repeat {i + 1}: {mode:>6} {s:.3f} s per split step", flush=True)
    print(f"split step, LM head on every position (before): {best['before']:.3f} s (fastest)")
    print(f"split step, LM head at labelled positions (now): {best['now']:.3f} s (fastest)")
    print(f"faster by {1 - best['now'] / best['before']:.1%} (target >= 15%)")


if __name__ == "__main__":
    main()
