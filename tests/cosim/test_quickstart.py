"""The quickstart scenario on the real SmolLM2 and IMDB (slow: about two minutes)."""

import pytest

from cosim.cli import main
from cosim.analysis import critical_path, load_run


@pytest.mark.slow
def test_quickstart_learns_and_the_clock_adds_up(tmp_path):
    out = tmp_path / "quickstart"
    assert main(["run", "scenarios/quickstart.yaml", "--out", str(out), "--quiet"]) == 0
    run = load_run(out)
    s = run.summary
    assert s["after"]["accuracy"] > s["before"]["accuracy"]
    assert s["after"]["loss"] < s["before"]["loss"]
    assert critical_path(run.events).duration_s.sum() == pytest.approx(s["total_time_s"], rel=1e-9)
    # SmolLM2: hidden 576, float32 activations + int64 mask and labels, batch 4 x 64 tokens.
    assert (run.events[run.events.kind == "uplink"].bytes == 4 * 64 * 576 * 4 + 2 * 4 * 64 * 8).all()
    assert (run.events[run.events.kind == "downlink"].bytes == 4 * 64 * 576 * 4).all()
