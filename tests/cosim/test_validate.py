"""Checks before anything runs: the scenario against its model's configuration and its profile (issue 14)."""

import json
import time

import numpy as np
import pytest
import yaml

from cosim import model_info
from cosim.cli import main
from cosim.errors import CosimError, ScenarioError
from cosim.model_info import TINY_MODELS, gguf_metadata, model_shape, wheel_gguf
from cosim.scenario import scenario_from_dict
from cosim.scenario.validate import ScenarioWarning

QUICKSTART = "scenarios/quickstart.yaml"
TINY = ["--set", "model.name=tiny-llama", "--set", "split.cut_layer=2"]


def errors(capsys) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("cosim: error:")]


def test_a_cut_beyond_smollm2s_30_blocks_is_refused_before_the_model_loads(tmp_path, capsys):
    t0 = time.perf_counter()
    code = main(["run", QUICKSTART, "--set", "split.cut_layer=40", "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 2 and time.perf_counter() - t0 < 5              # the model (8 s) is never loaded
    assert errors(capsys) == [f"cosim: error: {QUICKSTART}: split.cut_layer: expected 0 < cut_layer < 30, the "
                              f"blocks of smollm2-135m-instruct (30 blocks, hidden size 576) (got 40)"]
    assert not (tmp_path / "out").exists()                          # nothing written


def test_smollm2s_shape_comes_from_the_wheels_gguf_header_or_the_converted_config(tmp_path, monkeypatch):
    monkeypatch.setenv("COSIM_CACHE_DIR", str(tmp_path))           # nothing converted yet: the GGUF header
    shape = model_shape("smollm2-135m-instruct")
    # SmolLM2-135M: 30 blocks of width 576, 9 query heads (its model card and config.json).
    assert (shape.family, shape.n_layers, shape.hidden_size) == ("llama", 30, 576)
    assert shape.source.endswith(".gguf")
    meta = gguf_metadata(wheel_gguf("smollm2-135m-instruct"))
    assert meta["llama.attention.head_count"] == 9 and meta["llama.attention.head_count_kv"] == 3
    converted = tmp_path / "models" / "smollm2-135m-instruct"
    converted.mkdir(parents=True)
    (converted / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 30,
                                                       "hidden_size": 576}))
    assert model_shape("smollm2-135m-instruct").source == str(converted / "config.json")


def test_the_tiny_models_shapes_are_those_llm_split_builds():
    from llm_split import load_causal_lm

    for name in TINY_MODELS:
        model, _ = load_causal_lm(name)
        shape = model_shape(name)
        assert (shape.n_layers, shape.hidden_size) == (model.config.num_hidden_layers, model.config.hidden_size)
        assert shape.family == model.config.model_type
        linear = {n.split(".0.", 1)[1] for n, m in model.named_modules()        # block 0's linear modules
                  if ".0." in n and type(m).__name__ in ("Linear", "Conv1D")}
        assert linear == set(shape.block_linears), name


def test_a_local_config_gives_the_depth_and_module_names(tmp_path, capsys):
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 6, "n_embd": 32}))
    base = {"model": {"name": str(folder)}, "split": {"cut_layer": 5}, "lora": {"target_modules": ["c_attn"]}}
    sc = scenario_from_dict(base)
    assert model_shape(str(folder)).n_layers == 6 and sc.split.cut_layer == 5
    bad = {**base, "split": {"cut_layer": 6}, "lora": {"target_modules": ["c_attn", "q_proj"], "rank": 64}}
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict(bad, source="s.yaml")
    assert exc.value.problems == [
        f"s.yaml: split.cut_layer: expected 0 < cut_layer < 6, the blocks of {folder} (6 blocks, hidden size 32) "
        f"(got 6)",
        "s.yaml: lora.target_modules[1]: expected a linear module of a gpt2 block (attn.c_attn, attn.c_proj, "
        "mlp.c_fc, mlp.c_proj; or the part after a dot) (got 'q_proj')",
        "s.yaml: lora.rank: expected at most the hidden size 32 of " + str(folder) +
        " (a rank-r update of an H-wide projection has rank at most H) (got 64)"]


def test_target_modules_follow_pefts_suffix_rule():
    ok = {"model": {"name": "tiny-llama"}, "split": {"cut_layer": 2},
          "lora": {"target_modules": ["q_proj", "self_attn.v_proj", "down_proj"]}}
    scenario_from_dict(ok)
    with pytest.raises(ScenarioError, match=r"lora.target_modules\[0\]: .*\(got 'attn.q_proj'\)"):
        scenario_from_dict({**ok, "lora": {"target_modules": ["attn.q_proj"]}})  # not a suffix at a dot


def test_an_unknown_model_fails_at_once_offline(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    assert main(["validate", QUICKSTART, "--set", "model.name=no-org/no-such-model"]) == 2
    assert time.perf_counter() - t0 < 2
    [line] = errors(capsys)
    assert "model.name: expected a built-in model (smollm2-135m-instruct, tiny-llama" in line
    assert "not in the Hugging Face cache and HF_HUB_OFFLINE is set (the built-in models work offline) (got 'no-org/no-such-model')" in line


def test_without_offline_mode_one_connection_attempt_decides(monkeypatch):
    tried = []

    def unreachable(address, timeout):
        tried.append((address, timeout))
        raise OSError("Name or service not known")

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(model_info.socket, "create_connection", unreachable)
    with pytest.raises(CosimError, match="huggingface.co cannot be reached"):
        model_shape("no-org/another-missing-model")
    assert tried == [(("huggingface.co", 443), model_info.HUB_PROBE_TIMEOUT_S)]


def test_a_model_in_the_hugging_face_cache_is_read_offline(tmp_path, monkeypatch):
    from huggingface_hub import constants

    snapshot = tmp_path / "models--some-org--cached-model" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({"model_type": "qwen2", "num_hidden_layers": 24,
                                                      "hidden_size": 896}))
    (tmp_path / "models--some-org--cached-model" / "refs").mkdir()
    (tmp_path / "models--some-org--cached-model" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    shape = model_shape("some-org/cached-model")
    assert (shape.family, shape.n_layers, shape.hidden_size) == ("qwen2", 24, 896)


# --- workload.profile ------------------------------------------------------------------------------------------

def fake_profile(path, **changes):
    """A profile as `cosim profile --pilot-rounds 2` writes it: tiny-llama, cuts 1..3, ranks 2, 4."""
    costs = {"cuts": [1, 2, 3], "ranks": [2, 4], "activation_bytes": [1e4] * 3, "gradient_bytes": [8e3] * 3,
             **{k: np.full((3, 2), 1e6).tolist() for k in ("client_forward_flops", "client_backward_flops",
                                                           "server_flops", "client_adapter_bytes")}}
    pilot = {"rounds": 2, "ranks": [2, 4], "clients": 4, "local_iterations": 4, "seed": 0, "cut_layer": 2,
             "test_size": 8, "lr": 1e-3, "weight_decay": 0.0, "task": "imdb", "partition": "iid", "lora_alpha": 16.0,
             "eval_loss": {"2": [3.0, 2.0, 1.5], "4": [3.0, 1.8, 1.2]},
             "accuracy": {"2": [0.5, 0.6, 0.7], "4": [0.5, 0.65, 0.75]}, "target": None}
    profile = {"model": "tiny-llama", "n_layers": 4, "task": "imdb", "batch_size": 4, "seq_len": 96,
               "activation_dtype": "float32", "lora": {"alpha": 16.0, "dropout": 0.0, "target_modules": None},
               "costs": costs, "server_adapter_bytes": np.full((3, 2), 1e3).tolist(), "adapter_element_bytes": 4.0,
               "pilot": pilot}
    for dotted, value in changes.items():
        node = profile
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    path.write_text(json.dumps(profile))
    return path


def replay_scenario(path, **sets):
    raw = {"model": {"name": "tiny-llama"}, "split": {"cut_layer": 2}, "lora": {"rank": 4},
           "workload": {"kind": "replay", "profile": str(path)}}
    for dotted, value in sets.items():
        section, key = dotted.split(".")
        raw.setdefault(section, {})[key] = value
    return raw


def test_a_matching_profile_passes(tmp_path):
    sc = scenario_from_dict(replay_scenario(fake_profile(tmp_path / "p.json")))
    assert sc.workload.kind == "replay"


def test_a_missing_profile_is_named_in_validation(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    assert main(["validate", QUICKSTART, *TINY, "--set", f"workload.profile={missing}"]) == 2
    assert errors(capsys) == [f"cosim: error: {QUICKSTART}: workload.profile: {missing}: no such file"]


def test_a_profile_measured_otherwise_is_refused_with_every_mismatch(tmp_path):
    path = fake_profile(tmp_path / "p.json", model="tiny-gpt2", batch_size=8, activation_dtype="float16",
                        **{"pilot.local_iterations": 3})
    with pytest.raises(ScenarioError) as exc:                     # the optimizer decides with rounds(rank)
        scenario_from_dict(replay_scenario(path, **{"training.local_iterations": 6, "lora.rank": 8,
                                                    "allocation.policy": "optimizer"}), source="s")
    p = f"s: workload.profile: {path}"
    assert exc.value.problems == [
        f"{p} was measured with model.name=tiny-gpt2 (the scenario has tiny-llama)",
        f"{p} was measured with training.batch_size=8 (the scenario has 4)",
        f"{p} was measured with split.activation_dtype=float16 (the scenario has float32)",
        f"{p} lacks lora.rank=8 (ranks [2, 4])",
        f"{p}: its pilot runs had training.local_iterations=3 (the scenario has 6): rounds(rank) and the pilot's "
        f"accuracy do not apply; profile again with the scenario's settings"]


def test_a_replay_only_warns_that_its_accuracy_is_the_pilots(tmp_path):
    # The timing of a replay does not depend on the pilot; only its held-out accuracy and loss do.
    path = fake_profile(tmp_path / "p.json", **{"pilot.local_iterations": 3})
    with pytest.warns(ScenarioWarning, match=r"its pilot runs had training.local_iterations=3 \(the scenario has "
                                             r"6\): the replay's held-out accuracy and loss are the pilot's"):
        scenario_from_dict(replay_scenario(path, **{"training.local_iterations": 6}))


def test_a_pilot_with_other_clients_is_a_warning(tmp_path):
    path = fake_profile(tmp_path / "p.json")
    with pytest.warns(ScenarioWarning, match=r"its pilot runs had clients.count=4 \(the scenario has 8\): "
                                             r"rounds\(rank\) are taken from the pilot as they are"):
        scenario_from_dict(replay_scenario(path, **{"clients.count": 8}))


def test_the_pilot_is_not_checked_where_it_is_not_used(tmp_path, recwarn):
    path = fake_profile(tmp_path / "p.json", **{"pilot.local_iterations": 3})
    raw = replay_scenario(path, **{"clients.count": 8})
    raw["workload"]["kind"] = "real"                                # policy equal: only the cost table is read
    scenario_from_dict(raw)
    assert not [w for w in recwarn if issubclass(w.category, ScenarioWarning)]


def test_a_sweep_with_one_impossible_run_is_refused_before_any_run(tmp_path, capsys):
    base = yaml.safe_load(open(QUICKSTART))
    base["model"] = {"name": "tiny-llama"}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({"name": "s", "base": "base.yaml",
                                                         "grid": {"split.cut_layer": [2, 4]}}))
    assert main(["sweep", str(tmp_path / "sweep.yaml"), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert errors(capsys) == [f"cosim: error: {tmp_path / 'sweep.yaml'}: run 1 (split.cut_layer=4): split.cut_layer: "
                              f"expected 0 < cut_layer < 4, the blocks of tiny-llama (4 blocks, hidden size 64) "
                              f"(got 4)"]
    assert not (tmp_path / "out").exists()
