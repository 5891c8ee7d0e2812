"""``split.activation_dtype`` in a run and in a profile: the trace's bytes are the encoded payload's."""

import pytest

from cosim.analysis import load_run
from cosim.cli import main
from cosim.profile import read_profile
from cosim.scenario.schema import ACTIVATION_DTYPES

TINY = ["scenarios/quickstart.yaml", "--set", "model.name=tiny-llama", "--set", "split.cut_layer=2",
        "--set", "data.test_size=8", "--set", "data.max_train=40", "--set", "training.seq_len=16",
        "--set", "training.batch_size=2", "--set", "training.rounds=1", "--set", "training.local_iterations=2",
        "--set", "clients.count=2", "--set", "compute.client_flops_per_s=1e12"]
HIDDEN = 2 * 16 * 64                  # batch x tokens x tiny-llama's hidden size
MASK_LABELS = 2 * 2 * 16 * 8          # int64 mask and labels


def test_the_schema_offers_the_encodings_llm_split_implements():
    from llm_split.compress import CUT_DTYPES

    assert ACTIVATION_DTYPES == CUT_DTYPES


@pytest.mark.parametrize("cut_dtype, hidden_bytes", [("float32", 4 * HIDDEN), ("int8_per_token", HIDDEN + 4 * 32)])
def test_a_runs_uplink_and_downlink_bytes_follow_the_encoding(tmp_path, cut_dtype, hidden_bytes):
    out = tmp_path / cut_dtype
    assert main(["run", *TINY, "--set", f"split.activation_dtype={cut_dtype}", "--out", str(out), "--quiet"]) == 0
    events = load_run(out).events
    assert set(events.loc[events.kind == "uplink", "bytes"]) == {hidden_bytes + MASK_LABELS}
    assert set(events.loc[events.kind == "downlink", "bytes"]) == {hidden_bytes}


def test_a_profile_measures_the_encoded_bytes_and_says_which(tmp_path):
    path = tmp_path / "p.json"
    assert main(["profile", *TINY, "--set", "split.activation_dtype=float16", "--cuts", "1,2", "--ranks", "4",
                 "--out", str(path)]) == 0
    profile = read_profile(path)
    assert profile["activation_dtype"] == "float16"
    assert profile["costs"]["activation_bytes"].tolist() == [2 * HIDDEN + MASK_LABELS] * 2
    assert profile["costs"]["gradient_bytes"].tolist() == [2 * HIDDEN] * 2
