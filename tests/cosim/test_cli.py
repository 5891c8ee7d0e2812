import subprocess
import sys

from cosim.cli import main


def test_validate_prints_the_resolved_scenario(capsys):
    assert main(["validate", "scenarios/quickstart.yaml", "--set", "training.rounds=7"]) == 0
    out = capsys.readouterr().out
    assert "rounds: 7" in out and "pathloss_intercept_db: 128.1" in out


def test_bad_scenario_exits_2_with_one_line_per_problem_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("clients:\n  count: -1\ntraining:\n  rounds: zero\n  typo: 1\n")
    out_dir = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "cosim", "run", str(bad), "--out", str(out_dir)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        f"cosim: error: {bad}: clients.count: expected a value > 0 (got -1)",
        f"cosim: error: {bad}: training.rounds: expected an integer (got 'zero')",
        f"cosim: error: {bad}: training.typo: unknown key (valid keys: batch_size, eval_batch_size, "
        "eval_every, local_iterations, lr, rounds, seq_len, weight_decay)",
    ]
    assert "Traceback" not in proc.stderr
    assert not out_dir.exists() and list(tmp_path.iterdir()) == [bad]


def test_bad_flags_exit_2(tmp_path, capsys):
    assert main(["run", "scenarios/quickstart.yaml", "--set", "nope", "--out", str(tmp_path / "o")]) == 2
    assert "--set nope: expected dotted.key=value" in capsys.readouterr().err
    assert main(["validate", "scenarios/quickstart.yaml", "--seed", "-3"]) == 2


def test_refuses_an_output_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "thesis.tex").write_text("precious")
    assert main(["run", "scenarios/quickstart.yaml", "--out", str(tmp_path), "--quiet"]) == 2
    assert "not a cosim run" in capsys.readouterr().err
    assert (tmp_path / "thesis.tex").read_text() == "precious"
