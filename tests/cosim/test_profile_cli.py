"""``cosim profile``: the cost table of a scenario's model, printed and written as JSON."""

import json
import subprocess
import sys

import numpy as np
import pytest

import solver
from cosim.cli import main
from cosim.profile import read_profile

TINY = ["scenarios/quickstart.yaml", "--set", "model.name=tiny-llama", "--set", "split.cut_layer=2",
        "--set", "data.test_size=8", "--set", "data.max_train=50", "--set", "training.seq_len=32"]


def test_profile_prints_the_table_and_writes_a_cost_table(tmp_path, capsys):
    out = tmp_path / "profile.json"
    assert main(["profile", *TINY, "--cuts", "3,1", "--ranks", "2,4", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# tiny-llama (4 blocks), batch 4 x 32 tokens")
    assert "client fwd GFLOP" in lines[1] and "adapter KB" in lines[1]
    assert [row.split()[:2] for row in lines[2:6]] == [["3", "2"], ["3", "4"], ["1", "2"], ["1", "4"]]
    assert lines[-1] == f"wrote {out}"

    result = read_profile(out)
    assert result["model"] == "tiny-llama" and result["batch_size"] == 4 and result["seq_len"] == 32
    assert result["lora"]["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    table = solver.CostTable(**result["costs"])
    assert table.cuts.tolist() == [3, 1] and table.ranks.tolist() == [2, 4]
    # Uplink: float32 hidden states (B, T, H=64) + int64 mask and labels; downlink: their gradient.
    np.testing.assert_array_equal(table.activation_bytes, 4 * 32 * 64 * 4 + 2 * 4 * 32 * 8)
    np.testing.assert_array_equal(table.gradient_bytes, 4 * 32 * 64 * 4)
    # q, o: 64 -> 64; k, v: 64 -> 32 (grouped-query); r (d_in + d_out) float32 weights each, per client block.
    per_rank_block = (2 * (64 + 64) + 2 * (64 + 32)) * 4
    np.testing.assert_array_equal(table.client_adapter_bytes, np.outer([3, 1], [2, 4]) * per_rank_block)
    assert np.all(table.client_forward_flops[0] > table.client_forward_flops[1])


@pytest.mark.parametrize("flags, message", [
    (["--cuts", "1,x"], "--cuts: expected distinct comma-separated integers >= 1 (got '1,x')"),
    (["--ranks", "0,4"], "--ranks: expected distinct comma-separated integers >= 1 (got '0,4')"),
    (["--cuts", "1,4"], "--cuts: expected integers in 1..3"),
])
def test_bad_flags_exit_2_naming_the_flag(flags, message, capsys):
    assert main(["profile", *TINY, "--ranks", "2", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cosim_profile_imports_without_torch():
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('torch', 'transformers', 'peft'):\n"
            "            raise ModuleNotFoundError(name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import cosim.profile\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# -- rounds(rank) from measured convergence -------------------------------------------------------

from cosim.convergence import Convergence, Target, fit_exponential  # noqa: E402


def synthetic_pilot(curves, rounds, target=None, accuracy=None):
    ranks = sorted(curves)
    t = np.arange(rounds + 1)
    return {"rounds": rounds, "ranks": ranks,
            "eval_loss": {str(r): list(a * np.exp(-b * t) + c) for r, (a, b, c) in curves.items()},
            "accuracy": {str(r): list(accuracy[r](t) if accuracy else 0.5 + 0 * t) for r in ranks},
            "target": target}


def test_the_fit_reproduces_a_synthetic_exponential():
    t = np.arange(6)
    fit = fit_exponential(t, 0.5 + 2.0 * np.exp(-0.3 * t))
    assert (fit.a, fit.b, fit.c) == pytest.approx((2.0, 0.3, 0.5), rel=1e-7)
    rising = fit_exponential(t, 0.9 - 0.4 * np.exp(-0.7 * t))
    assert (rising.a, rising.b, rising.c) == pytest.approx((-0.4, 0.7, 0.9), rel=1e-7)
    # Closed-form crossing time of c + a exp(-b t) = y.
    assert fit.time_to(0.6, falling=True) == pytest.approx(np.log(2.0 / 0.1) / 0.3, rel=1e-7)
    assert fit.time_to(0.4, falling=True) == np.inf and fit.time_to(3.0, falling=True) == 0.0


def test_rounds_to_target_measured_extrapolated_and_capped():
    # Rank 16 reaches loss 0.6 at t = ln(20)/0.9 = 3.33 -> round 4 (measured in a 5-round pilot);
    # rank 8 at ln(20)/0.3 = 9.99 -> 10 rounds (extrapolated); rank 4 levels off at 0.7 (capped: 10 x 5).
    conv = Convergence(synthetic_pilot({4: (2.0, 0.5, 0.7), 8: (2.0, 0.3, 0.5), 16: (2.0, 0.9, 0.5)}, 5,
                                       target={"metric": "loss", "value": 0.6}))
    got = {r: (conv.rounds_to_target(r).rounds, conv.rounds_to_target(r).how) for r in (4, 8, 16)}
    assert got == {4: (50, "capped"), 8: (10, "extrapolated"), 16: (4, "measured")}
    # A rank between pilot ranks: interpolated in log2(rank); the table's order is kept.
    np.testing.assert_array_equal(conv.rounds_for([16, 4, 8, 32, 11]),
                                  [4, 50, 10, 4, np.ceil(10 + (4 - 10) * (np.log2(11) - 3))])
    # Past the pilot the metrics follow the fit; within it they are the measured points.
    assert conv.metrics_at(8, 3)[0] == conv.curves["loss"][8][3]
    assert conv.metrics_at(8, 12)[0] == pytest.approx(0.5 + 2.0 * np.exp(-0.3 * 12), rel=1e-7)


def test_the_default_target_is_the_best_ranks_last_loss_and_accuracy_targets_work():
    pilot = synthetic_pilot({4: (2.0, 0.2, 0.5), 8: (2.0, 0.4, 0.5)}, 4,
                            accuracy={4: lambda t: 0.9 - 0.4 * np.exp(-0.2 * t),
                                      8: lambda t: 0.9 - 0.4 * np.exp(-0.4 * t)})
    conv = Convergence(pilot)
    assert conv.target_value == pytest.approx(0.5 + 2.0 * np.exp(-1.6))
    assert conv.rounds_to_target(8).rounds == 4 and conv.rounds_to_target(4).rounds == 8  # t = 8 exactly
    acc = Convergence({**pilot, "target": Target(metric="accuracy", value=0.8).to_dict()})
    assert acc.rounds_to_target(4).rounds == int(np.ceil(np.log(4.0) / 0.2))
    assert "target held-out accuracy >= 0.8000" in acc.describe()


def test_profile_pilot_stores_curves_and_optimize_uses_them(tmp_path, capsys):
    out = tmp_path / "profile.json"
    settings = [*TINY, "--set", "clients.count=2", "--set", "training.local_iterations=2",
                "--set", "compute.client_flops_per_s=1e12", "--set", "lora.rank=4"]
    assert main(["profile", *settings, "--cuts", "1,2", "--ranks", "2,4", "--pilot-rounds", "2",
                 "--pilot-ranks", "4", "--max-rounds", "7", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "# convergence: 2 pilot rounds" in printed and "fit loss(t) = c + a exp(-b t)" in printed
    assert "2/2 pilot rounds [" in captured.err             # the progress bar, with its elapsed<remaining estimate
    result = read_profile(out)
    pilot = result["pilot"]
    assert pilot["ranks"] == [4] and pilot["rounds"] == 2 and pilot["target"]["max_rounds"] == 7
    assert len(pilot["eval_loss"]["4"]) == len(pilot["accuracy"]["4"]) == 3
    assert pilot["eval_loss"]["4"][-1] < pilot["eval_loss"]["4"][0]  # two rounds of training lower the loss
    # Server-side adapter: the blocks after the cut (4 blocks in all).
    np.testing.assert_array_equal(result["server_adapter_bytes"] + result["costs"]["client_adapter_bytes"],
                                  np.outer([4, 4], [2, 4]) * (2 * (64 + 64) + 2 * (64 + 32)) * 4)
    # cosim optimize reads rounds(rank) from the pilot; without one every rank takes training.rounds.
    decisions = tmp_path / "d.json"
    assert main(["optimize", *settings, "--profile", str(out), "--out", str(decisions)]) == 0
    with_pilot = json.loads(decisions.read_text())
    assert with_pilot["rounds_to_target"] == {"2": 2.0, "4": 2.0}  # the default target: rank 4's last loss
    del_pilot = json.loads(out.read_text())
    del_pilot["pilot"] = None
    out.write_text(json.dumps(del_pilot))
    assert main(["optimize", *settings, "--profile", str(out), "--out", str(decisions)]) == 0
    without = json.loads(decisions.read_text())
    assert without["rounds_to_target"] is None
    assert all(p["rounds"] == 3 for p in without["policies"].values())  # training.rounds of the quickstart


@pytest.mark.parametrize("flags, message", [
    (["--pilot-rounds", "1"], "--pilot-rounds: expected 0 (no pilot) or at least 2 rounds"),
    (["--pilot-ranks", "4"], "--pilot-ranks: expected --pilot-rounds too"),
    (["--pilot-rounds", "2", "--target-accuracy", "1.5"], "--target-accuracy: expected a value in (0, 1]"),
])
def test_bad_pilot_flags_exit_2(flags, message, capsys):
    assert main(["profile", *TINY, "--ranks", "2", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_default_target_has_a_tolerance_so_a_thousandth_of_a_nat_does_not_rank():
    # Two ranks from 3.0 to about 1.0, ending 0.001 nats apart: without a tolerance the worse one misses the
    # default target (the better one's last loss) and is extrapolated past the pilot.
    pilot = {"rounds": 3, "ranks": [4, 8], "test_size": 128, "target": None,
             "eval_loss": {"4": [3.0, 1.8, 1.3, 1.001], "8": [3.0, 1.7, 1.25, 1.000]},
             "accuracy": {"4": [0.5, 0.6, 0.7, 0.8], "8": [0.5, 0.6, 0.7, 0.8]}}
    conv = Convergence(pilot)
    assert conv.tolerance[0] == pytest.approx(0.01 * (3.0 - 1.0))         # 1% of rank 8's drop, 0.02 nats
    assert [conv.rounds_to_target(r).rounds for r in (4, 8)] == [3, 3]
    assert {conv.rounds_to_target(r).how for r in (4, 8)} == {"measured"}
    strict = Convergence({**pilot, "target": Target(tolerance=0.0).to_dict()})
    assert strict.rounds_to_target(4).how == "extrapolated" and strict.rounds_to_target(4).rounds == 4
    assert "tolerance 0.0200 (1% of rank 8's drop over the pilot)" in conv.describe()
    # An accuracy target: one binomial standard error at it, n = the pilot's held-out examples.
    acc = Convergence({**pilot, "target": Target(metric="accuracy").to_dict()})
    assert acc.tolerance[0] == pytest.approx(np.sqrt(0.8 * 0.2 / 128))
    # An explicit target has none unless asked.
    assert Convergence({**pilot, "target": Target(value=1.2).to_dict()}).tolerance[0] == 0.0


def test_an_unphysical_loss_floor_is_held_at_zero_and_flagged():
    # Nearly straight: tiny-llama's first pilot rounds. The free fit levels off far below zero loss.
    t, y = np.arange(4), np.array([10.857, 10.755, 10.650, 10.548])
    free = fit_exponential(t, y)
    assert free.c < -100
    fit = fit_exponential(t, y, floor=0.0)
    assert fit.c == 0.0 and fit.held == "floor" and fit.free_c == pytest.approx(free.c)
    assert "floor held at 0 (free fit c = " in fit.note()
    # It is the best fit with c = 0: no rate on a fine grid does better (a is solved exactly for each).
    sse = float(np.sum((fit(t) - y) ** 2))
    for b in np.geomspace(1e-4, 10, 2000):
        e = np.exp(-b * t)
        a = e @ y / (e @ e)
        assert sse <= np.sum((a * e - y) ** 2) * (1 + 1e-9)
    assert np.isfinite(fit.time_to(10.0, falling=True))
    # Data that fit inside the bounds are untouched by them.
    inside = fit_exponential(t, 0.5 + 2.0 * np.exp(-0.3 * t), floor=0.0)
    assert inside.held is None and inside.c == pytest.approx(0.5, rel=1e-7)


def test_ranks_without_a_pilot_say_where_their_rounds_come_from():
    conv = Convergence(synthetic_pilot({4: (2.0, 0.5, 0.5), 16: (2.0, 0.9, 0.5)}, 5,
                                       target={"metric": "loss", "value": 0.6}))
    got = {r: d for r, d in zip((2, 4, 8, 16, 64), conv.rounds_detail([2, 4, 8, 16, 64]))}
    # rank 4 reaches 0.6 at ln(20)/0.5 = 5.99 (past the 5-round pilot), rank 16 at ln(20)/0.9 = 3.33
    assert (got[4].how, got[4].rounds, got[16].how, got[16].rounds) == ("extrapolated", 6, "measured", 4)
    assert got[8].how == "interpolated" and got[8].detail == (
        f"log2-linear between ranks 4 ({got[4].rounds}) and 16 ({got[16].rounds})")
    assert got[8].rounds == 5                                                # halfway in log2: (6 + 4) / 2
    assert (got[2].how, got[2].rounds) == ("nearest", got[4].rounds) and "no pilot rank below" in got[2].detail
    assert (got[64].how, got[64].rounds) == ("nearest", got[16].rounds)
    assert "(no pilot)" in conv.describe(ranks=[2, 4, 8, 16, 64])
