"""Time the joint optimizer on a realistic instance and compare it with the baselines.

K = 100 clients, N = 256 main-set subchannels of 180 kHz (M = 0: adapters go
over the main set), 3GPP macro path loss with 8 dB shadowing and Rayleigh
fading, 0.5-2 TFLOP/s devices, a 100 TFLOP/s server, and a cost table shaped
like SmolLM2-135M (30 blocks, hidden 576, 49152-token vocabulary): 29 cuts x 5
ranks. FLOPs follow the usual ``2 x parameters x tokens`` per forward pass and
twice that per backward pass (PaLM, appendix B); payloads are batch x sequence
x hidden float32 tensors.

Run: ``.venv/bin/python benchmarks/bench_solver.py [--repeat 3] [--seed 0] [--sweep 5]``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from solver import (CostTable, Problem, equal_allocation, optimize_resources, optimize_split_rank,
                    random_allocation, solve)

HIDDEN, LAYERS, VOCAB, KV_DIM, MLP = 576, 30, 49152, 192, 1536
BATCH, SEQ = 4, 96
FLOAT_BYTES, INDEX_BYTES = 4, 8


def smollm2_costs(ranks=(4, 8, 16, 32, 64)) -> CostTable:
    """Cost table of SmolLM2-135M with LoRA on q and v of every block."""
    tokens = BATCH * SEQ
    block_params = 2 * HIDDEN * HIDDEN + 2 * HIDDEN * KV_DIM + 3 * HIDDEN * MLP
    attention_flops = 4 * SEQ * HIDDEN * tokens  # QK^T and AV, per block, forward
    cuts = np.arange(1, LAYERS)  # the client holds blocks 0..cut-1
    ranks = np.asarray(ranks)
    lora_params = ranks * ((HIDDEN + HIDDEN) + (HIDDEN + KV_DIM))  # per block: q and v adapters
    block_forward = 2 * (block_params + lora_params[None, :]) * tokens + attention_flops
    client_forward = cuts[:, None] * block_forward
    # Frozen weights need only the input gradient (2 x): backward ~ forward + LoRA weight grads.
    client_backward = client_forward + cuts[:, None] * 2 * lora_params[None, :] * tokens
    server_blocks = LAYERS - cuts
    head_forward = 2 * HIDDEN * VOCAB * tokens
    server = 3 * (server_blocks[:, None] * block_forward + head_forward)
    activation = np.full(cuts.size, BATCH * SEQ * (HIDDEN * FLOAT_BYTES + 2 * INDEX_BYTES), dtype=float)
    gradient = np.full(cuts.size, BATCH * SEQ * HIDDEN * FLOAT_BYTES, dtype=float)
    adapter = cuts[:, None] * lora_params[None, :] * FLOAT_BYTES
    return CostTable(cuts=cuts, ranks=ranks, client_forward_flops=client_forward,
                     client_backward_flops=client_backward, server_flops=server, activation_bytes=activation,
                     gradient_bytes=gradient, client_adapter_bytes=adapter)


def random_instance(rng: np.random.Generator, k: int = 100, n: int = 256) -> Problem:
    """Clients uniform in a 500 m cell (10 m minimum), 180 kHz subchannels at 2 GHz."""
    distance_km = np.sqrt(rng.uniform(0.01 ** 2, 0.5 ** 2, k))
    path_loss_db = 128.1 + 37.6 * np.log10(distance_km) + rng.normal(0, 8, k)
    gain = 10 ** (-path_loss_db[:, None] / 10) * rng.exponential(1.0, (k, n))
    bandwidth_hz = 180e3
    noise_w = 10 ** ((-174 + 5 - 30) / 10) * bandwidth_hz  # -174 dBm/Hz, 5 dB noise figure
    return Problem(costs=smollm2_costs(), rounds_to_target=np.array([420.0, 330, 290, 270, 262]),
                   bandwidth_hz=bandwidth_hz, gain_lin=gain, noise_power_w=noise_w,
                   device_flops_per_s=rng.uniform(0.5e12, 2e12, k), server_flops_per_s=100e12,
                   downlink_rate_bps=rng.uniform(20e6, 100e6, k), max_power_w=0.2, local_iterations=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sweep", type=int, default=0, help="also time this many other seeds once each")
    args = parser.parse_args()
    problem = random_instance(np.random.default_rng(args.seed))
    # The machine may be shared: the load and this process's CPU time say how far
    # the wall-clock times are inflated by other work.
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    times, cpu_times = [], []
    for _ in range(args.repeat):
        start, cpu_start = time.perf_counter(), time.process_time()
        best = solve(problem)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    cut, rank = 15, 16  # a conventional fixed setting: mid-model cut, rank 16
    print(f"instance: K={problem.num_clients} N={problem.num_subchannels} M=0, "
          f"{problem.costs.cuts.size} cuts x {problem.costs.ranks.size} ranks")
    print(f"solve time: best {min(times):.3f} s, median {np.median(times):.3f} s "
          f"over {args.repeat} runs (target <= 1 s); CPU time best {min(cpu_times):.3f} s")
    print(f"seed {args.seed} objective {best.total_delay_s!r} s")
    print(f"optimizer: {best.total_delay_s:10.1f} s total = {best.rounds:.0f} rounds x "
          f"{best.round_delay_s:.3f} s (cut {best.cut}, rank {best.rank}, {best.iterations} iterations)")
    for name, solution in (("equal", equal_allocation(problem, cut, rank)),
                           ("random", random_allocation(problem, cut, rank, np.random.default_rng(args.seed))),
                           ("split_rank_only", optimize_split_rank(problem)),
                           ("resources_only", optimize_resources(problem, cut, rank))):
        print(f"{name:>15}: {solution.total_delay_s:10.1f} s (cut {solution.cut}, rank {solution.rank}); "
              f"optimizer / {name} = {best.total_delay_s / solution.total_delay_s:.3f}")
    walls = [min(times)]
    for seed in range(args.seed + 1, args.seed + 1 + args.sweep):
        other = random_instance(np.random.default_rng(seed))
        start, cpu_start = time.perf_counter(), time.process_time()
        found = solve(other)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        walls.append(elapsed)
        ratio = found.total_delay_s / equal_allocation(other, cut, rank).total_delay_s
        print(f"seed {seed}: solve {elapsed:.3f} s (CPU {cpu:.3f} s), objective {found.total_delay_s!r} s, "
              f"optimizer / equal = {ratio:.5f}")
    if args.sweep:
        print(f"slowest solve {max(walls):.3f} s, {sum(w > 1 for w in walls)} of {len(walls)} seeds over 1 s; "
              f"load average {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
