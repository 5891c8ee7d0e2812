"""``cosim profile``: the cost table of a scenario's model, printed and written as JSON."""

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
