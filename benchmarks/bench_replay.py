"""Replay rate: trace rows per second against bare SimPy timeouts, and a 1,000-client, 100-round run end to end.

Replays SmolLM2-135M's measured cost table (`experiments/fedsllm/smollm2_profile.json`,
cut 3, rank 8) on the quickstart scenario with K clients on K subchannels (equal
allocation, one main-server slot), and prints:

- bare SimPy: timeouts per second of 100 processes in a loop, in this process;
- the replay's trace rows per second, computed round by round in one go
  (`cosim.fastreplay`) and event by event (the clock's processes), on a static
  radio (`channel.speed_mps=0`: one Rayleigh draw per subchannel) and on the
  default radio (3 km/h, a new fading block every 76 ms);
- `cosim run`'s wall time for K clients x R rounds x 6 local iterations, trace written.

    .venv/bin/python benchmarks/bench_replay.py [--clients 1000] [--rounds 100] [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import simpy

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "experiments" / "fedsllm" / "smollm2_profile.json"


def bare_simpy_rate(n: int = 400_000) -> float:
    env = simpy.Environment()

    def proc():
        for _ in range(n // 100):
            yield env.timeout(1.0)

    for _ in range(100):
        env.process(proc())
    t = time.perf_counter()
    env.run()
    return n / (time.perf_counter() - t)


def scenario(clients: int, rounds: int, *extra: str):
    from cosim.scenario import load_scenario

    return load_scenario(ROOT / "scenarios" / "quickstart.yaml", overrides=[
        "workload.kind=replay", f"workload.profile={PROFILE}", f"clients.count={clients}",
        f"channel.n_subchannels={clients}", "compute.client_flops_per_s=1e12", f"training.rounds={rounds}",
        "training.local_iterations=6", *extra])


def replay_rate(clients: int, rounds: int, fast: bool, *extra: str) -> tuple[float, int, float]:
    """(rows per second of simulation, rows, seconds) for a replay, the trace kept in memory."""
    from cosim.build import build_simulation
    from cosim.workloads.replay import ReplayWorkload

    sc = scenario(clients, rounds, *extra)
    fed = build_simulation(sc, ReplayWorkload.from_scenario(sc), fast_replay=fast)
    t = time.perf_counter()
    fed.run()
    wall = time.perf_counter() - t
    return fed.sim.rec.n_events / wall, fed.sim.rec.n_events, wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=100)
    p.add_argument("--quick", action="store_true", help="skip the event-by-event and default-radio measurements")
    args = p.parse_args()
    from cosim.hugepages import numpy_without_huge_pages

    numpy_without_huge_pages()  # as `cosim run` does (cosim/hugepages.py)
    k = args.clients
    bare = bare_simpy_rate()
    print(f"bare SimPy timeouts: {bare:,.0f} per s")
    static = ("channel.speed_mps=0",)
    rate, rows, wall = replay_rate(k, 5, True, *static)
    print(f"replay, {k} clients x 5 rounds, static radio, in one go: {rows:,} rows in {wall:.2f} s = {rate:,.0f} "
          f"rows/s ({rate / bare:.2f} x bare SimPy)")
    if not args.quick:
        small = min(k, 100)
        rate, rows, wall = replay_rate(small, 2, False, *static)
        print(f"replay, {small} clients x 2 rounds, static radio, event by event: {rows:,} rows in {wall:.2f} s = "
              f"{rate:,.0f} rows/s")
        rate, rows, wall = replay_rate(k, 2, True)
        print(f"replay, {k} clients x 2 rounds, default radio (3 km/h, 76 ms blocks), in one go: {rows:,} rows in "
              f"{wall:.2f} s = {rate:,.0f} rows/s")
    from cosim.run import run_scenario

    sc = scenario(k, args.rounds, *static)
    with tempfile.TemporaryDirectory() as tmp:
        t, cpu = time.perf_counter(), time.process_time()
        summary = run_scenario(sc, Path(tmp) / "run")
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        size = sum(f.stat().st_size for f in (Path(tmp) / "run").iterdir())
    print(f"run_scenario, {k} clients x {args.rounds} rounds x 6 iterations, static radio: {summary['n_events']:,} "
          f"rows, {summary['total_time_s']:.0f} simulated s, {wall:.2f} s wall ({cpu:.2f} s CPU) with the trace "
          f"written ({size / 1e6:.1f} MB)")
    wall, cpu = cli_run(k, args.rounds)
    print(f"`cosim run` from the shell, same scenario (imports included): {wall:.2f} s wall ({cpu:.2f} s CPU)")


def cli_run(clients: int, rounds: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``python -m cosim run`` on the scenario, in a child process."""
    import resource
    import subprocess
    import sys

    from cosim.scenario import dump_scenario

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "replay.yaml"
        path.write_text(dump_scenario(scenario(clients, rounds, "channel.speed_mps=0")))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cosim", "run", str(path), "--out", str(Path(tmp) / "run"), "--quiet"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


if __name__ == "__main__":
    main()
