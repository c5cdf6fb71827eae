"""Counting tokens offline: tiktoken's cl100k_base from the copy litellm bundles (never fetched).

Counts are for cost accounting and estimates; providers' own tokenizers differ by a few percent.
"""

from __future__ import annotations

import functools
import os
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from intent_router.costs import estimate_tokens


def _bundled_cache_dir() -> str | None:
    spec = find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
    return str(path) if path.is_dir() else None


@functools.lru_cache(maxsize=1)
def _encoding() -> Any:
    cache = _bundled_cache_dir()
    if cache is None:
        return None
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", cache)
    try:
        import tiktoken

        return tiktoken.get_encoding("cl100k_base")
    except Exception:  # no bundled encoding: fall back to the character estimate
        return None


def count_tokens(text: str) -> int:
    """cl100k_base tokens of ``text``; the 4-characters-a-token estimate if unavailable."""
    encoding = _encoding()
    if encoding is None:
        return estimate_tokens(text)
    return len(encoding.encode(text, disallowed_special=()))
