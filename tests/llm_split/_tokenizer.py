"""SmolLM2's tokenizer for the data tests, without loading the model (cached by llm_split.models)."""

from __future__ import annotations

import functools

from llm_split.models import _default_tokenizer, default_tokenizer_dir


@functools.lru_cache(maxsize=1)
def smollm2_tokenizer():
    """The SmolLM2-135M-Instruct tokenizer, loaded once per process."""
    return _default_tokenizer()


def _cache_dir():
    return default_tokenizer_dir()
