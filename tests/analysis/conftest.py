"""Fixtures shared by the analysis tests: one tiny real sweep per session, whose first run is the tiny run.

Building a model and its data dominates the cost of a tiny run, so the session makes two runs in all:
the sweep's (clients.count 3 and 2); the 3-client one doubles as the single-run fixture.
"""

from pathlib import Path

import pytest
import yaml

QUICKSTART = Path(__file__).resolve().parents[2] / "scenarios" / "quickstart.yaml"
# tiny-llama, a few seconds: 4 rounds (the timeline shows the first and last), 3 clients sharing one
# slow server slot (so server_queue events happen), held-out evaluation every 2 rounds.
TINY_RUN = {
    "model.name": "tiny-llama", "split.cut_layer": 2, "data.test_size": 8, "data.max_train": 40,
    "training.seq_len": 16, "training.batch_size": 2, "training.rounds": 4, "training.local_iterations": 1,
    "clients.count": 3, "training.eval_every": 2, "compute.client_flops_per_s": 2e12,
    "compute.server_flops_per_s": 1e9,
}
SWEEP_CLIENTS = [3, 2]


def _raw(overrides: dict) -> dict:
    from cosim.scenario.load import apply_overrides

    raw, problems = apply_overrides(yaml.safe_load(QUICKSTART.read_text()), overrides.items())
    assert not problems
    return raw


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory) -> Path:
    """A finished sweep folder: the tiny scenario with clients.count in {3, 2}, run in this process."""
    import torch

    from cosim.sweep import expand_runs, read_sweep, run_sweep

    folder = tmp_path_factory.mktemp("tiny_sweep")
    (folder / "tiny.yaml").write_text(yaml.safe_dump(_raw(TINY_RUN)))
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "tiny", "base": "tiny.yaml", "grid": {"clients.count": SWEEP_CLIENTS}},
                                   sort_keys=False))
    out = folder / "out"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)           # a tiny model: more threads only contend on a shared machine
    try:
        outcome = run_sweep(expand_runs(read_sweep(path)), out, workers=1, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert outcome.failed == 0 and outcome.done == len(SWEEP_CLIENTS)
    return out


@pytest.fixture(scope="session")
def tiny_run(tiny_sweep) -> Path:
    """A finished run folder of the tiny scenario (3 clients, 4 rounds): the sweep's first run."""
    import pandas as pd

    index = pd.read_parquet(tiny_sweep / "sweep.parquet")
    first = index.iloc[0]
    assert first["clients.count"] == 3
    return tiny_sweep / "runs" / first["run_id"]
