"""What the richer radio changes for the FedsLLM policies: equal vs optimizer, delay and energy.

Eight clients share 50 uplink subchannels of 180 kHz at 2 GHz. For each radio
below, three seeds and the policies ``equal`` and ``optimizer``, this runs
``cosim run`` on the quickstart scenario with the replay workload (SmolLM2-135M's
measured cost table, ``experiments/fedsllm/smollm2_profile.json``; nothing is
trained), for the rounds the rank chosen at round 0 needs (rank 8: 2 rounds),
and writes ``radio.csv`` (one row per run) and ``radio.md`` (mean +- std).

Radios, each adding one option to the previous:

1. ``shannon_iid``: the defaults (TR 36.814 macro law, 8 dB shadowing, Rayleigh
   fading independent on each subchannel, Shannon rate);
2. ``uma``: TR 38.901 UMa path loss with LoS probability and its per-state shadowing;
3. ``uma_tdl``: + TDL-C fading at 300 ns delay spread (correlated subchannels);
4. ``uma_tdl_mcs``: + TS 38.214 64QAM MCS table, BLER 10 % target, HARQ (4 transmissions);
5. ``uma_tdl_mcs_mobile``: + random-waypoint mobility at 3 km/h.

Energy per device and round: compute (FLOPs x 1e-11 J/FLOP, the default) plus
transmission (transmit power x air time, retransmissions included); the servers'
and the base station's energy are reported apart. Usage (repository root)::

    .venv/bin/python experiments/radio/run_radio.py        # a few minutes, no torch
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from cosim.run import run_scenario  # noqa: E402
from cosim.scenario import load_scenario  # noqa: E402

PROFILE = ROOT / "experiments" / "fedsllm" / "smollm2_profile.json"
SCENARIO = ROOT / "scenarios" / "quickstart.yaml"
K = 8
DEVICE_FLOPS = (0.5e12, 1.0e12, 1.5e12, 2.0e12)
POLICIES = ("equal", "optimizer")
ROUNDS = 2  # rounds_to_target of rank 8, the rank every policy keeps on this profile (experiments/fedsllm)
UMA = ["channel.pathloss_model=uma"]
TDL = ["channel.fading=tdl", "channel.tdl_profile=TDL-C", "channel.delay_spread_s=300e-9"]
MCS = ["link.rate_model=mcs", "link.mcs_table=qam64", "link.target_bler=0.1", "link.harq_max_transmissions=4"]
RADIOS = {
    "shannon_iid": [],
    "uma": UMA,
    "uma_tdl": UMA + TDL,
    "uma_tdl_mcs": UMA + TDL + MCS,
    "uma_tdl_mcs_mobile": UMA + TDL + MCS + ["mobility.model=random_waypoint"],
}
DEVICE_KINDS = ("client_forward", "client_backward")
UPLINK_KINDS = ("uplink", "adapter_upload")
DOWNLINK_KINDS = ("downlink", "broadcast")


def scenario(radio: str, policy: str, seed: int):
    flops = ", ".join(f"{DEVICE_FLOPS[i % len(DEVICE_FLOPS)]:g}" for i in range(K))
    sets = [f"clients.count={K}", "channel.n_subchannels=50", f"compute.client_flops_per_s=[{flops}]",
            f"allocation.policy={policy}", "workload.kind=replay", f"workload.profile={PROFILE}",
            "training.eval_every=0", f"training.rounds={ROUNDS}", *RADIOS[radio]]
    return load_scenario(SCENARIO, overrides=sets, seed=seed)


def energy_by_device(events: pd.DataFrame, sc) -> tuple[pd.Series, float, float]:
    """Energy per device over the run (J), the servers' and the base station's (J).

    Uses the trace's ``energy_j`` column where the engine writes one; otherwise the
    same arithmetic from the events: FLOPs x J/FLOP, transmit power x duration.
    """
    from cosim.energy import device_j_per_flop, server_j_per_flop

    ev = events.copy()
    if "energy_j" not in ev.columns:
        j = device_j_per_flop(sc)
        dev = ev.kind.isin(DEVICE_KINDS)
        ev["energy_j"] = 0.0
        ev.loc[dev, "energy_j"] = ev.loc[dev, "flops"] * ev.loc[dev, "client"].map(lambda k: j[int(k)])
        srv = ev.kind.isin(("server_step", "aggregate"))
        ev.loc[srv, "energy_j"] = ev.loc[srv, "flops"] * server_j_per_flop(sc)
        tx = ev.kind.isin(UPLINK_KINDS + DOWNLINK_KINDS)
        ev.loc[tx, "energy_j"] = ev.loc[tx, "power_w"].fillna(0.0) * ev.loc[tx, "duration_s"]
    device = ev[ev.kind.isin(DEVICE_KINDS + UPLINK_KINDS)].groupby("client").energy_j.sum()
    servers = float(ev[ev.kind.isin(("server_step", "aggregate"))].energy_j.sum())
    base_station = float(ev[ev.kind.isin(DOWNLINK_KINDS)].energy_j.sum())
    return device, servers, base_station


def run_all(seeds: list[int]) -> pd.DataFrame:
    rows = []
    with tempfile.TemporaryDirectory(prefix="radio-") as tmp:
        for radio in RADIOS:
            for seed in seeds:
                for policy in POLICIES:
                    sc = scenario(radio, policy, seed)
                    out = Path(tmp) / f"{radio}_{seed}_{policy}"
                    summary = run_scenario(sc, out)
                    events = pd.read_parquet(out / "events.parquet")
                    rounds = pd.read_parquet(out / "rounds.parquet")
                    device, servers, bs = energy_by_device(events, sc)
                    up = events[events.kind.isin(UPLINK_KINDS)]
                    rows.append({
                        "radio": radio, "seed": seed, "policy": policy,
                        "total_delay_s": summary["total_time_s"],
                        "uplink_s_mean": float(up.duration_s.mean()),
                        "realised_over_predicted": float((rounds.duration_s / rounds.predicted_s).mean()),
                        "device_energy_j_mean": float(device.mean()), "device_energy_j_max": float(device.max()),
                        "server_energy_j": servers, "bs_energy_j": bs,
                        "retransmissions": int(events["retransmissions"].sum())
                        if "retransmissions" in events.columns else None,
                    })
                    print(f"{radio:<20} seed {seed} {policy:<10} {summary['total_time_s']:>9.2f} s "
                          f"device {device.mean():8.2f} J (max {device.max():8.2f})", flush=True)
    return pd.DataFrame(rows)


def _pm(values: pd.Series, fmt: str) -> str:
    sd = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():{fmt}} +- {sd:{fmt}}"


HEADER = """# The richer radio and the FedsLLM policies

K = {k} clients (0.5-2 TFLOP/s), 50 uplink subchannels of 180 kHz at 2 GHz, 3 km/h,
SmolLM2-135M's measured cost table replayed (`workload.kind: replay`), cut 3 /
rank 8, {rounds} rounds of 6 local iterations; mean +- std over {n} seeds (positions,
shadowing, LoS states, fading, block errors and paths differ per seed).
Regenerate with `.venv/bin/python experiments/radio/run_radio.py`.

Device energy: compute (FLOPs x 1e-11 J/FLOP) + transmission (power x air time,
retransmissions included), summed over the run, mean and max over the 8 devices.
"realised / predicted": the realised round over the optimizer's predicted round
(it plans with Shannon rates on the fading block it sees at the round's start).

"""


def table(df: pd.DataFrame) -> str:
    lines = ["| radio | policy | total delay (s) | mean uplink transfer (s) | realised / predicted | "
             "device energy, mean (J) | device energy, max (J) | BS energy (J) | retransmissions | vs equal |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for radio in RADIOS:
        cell = df[df.radio == radio]
        equal = cell[cell.policy == "equal"].total_delay_s.mean()
        for policy in POLICIES:
            p = cell[cell.policy == policy]
            retx = "-" if p.retransmissions.isna().all() else f"{p.retransmissions.mean():.0f}"
            ratio = "-" if policy == "equal" else f"{p.total_delay_s.mean() / equal:.3f}"
            rp = "-" if policy == "equal" else f"{p.realised_over_predicted.mean():.2f}"
            lines.append(f"| {radio} | {policy} | {_pm(p.total_delay_s, '.1f')} | {_pm(p.uplink_s_mean, '.3f')} | "
                         f"{rp} | {_pm(p.device_energy_j_mean, '.2f')} | {_pm(p.device_energy_j_max, '.2f')} | "
                         f"{_pm(p.bs_energy_j, '.1f')} | {retx} | {ratio} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per cell (default 3)")
    parser.add_argument("--table-only", action="store_true", help="rewrite radio.md from radio.csv, run nothing")
    args = parser.parse_args(argv)
    if args.table_only:
        df = pd.read_csv(HERE / "radio.csv")
        seeds = sorted(df.seed.unique())
    else:
        seeds = list(range(args.seeds))
        df = run_all(seeds)
        df.to_csv(HERE / "radio.csv", index=False)
    notes = (HERE / "notes.md").read_text() if (HERE / "notes.md").exists() else ""  # written after reading the runs
    (HERE / "radio.md").write_text(HEADER.format(k=K, rounds=ROUNDS, n=len(seeds)) + table(df) + "\n" + notes)
    print(f"wrote {HERE / 'radio.csv'} and {HERE / 'radio.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
