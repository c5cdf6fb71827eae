"""The one token counter of serving, budgets and evaluation: tiktoken's cl100k_base.

The encoding is read from the copy litellm bundles (checked against tiktoken's own SHA-256 of
it), never fetched. Counts are for cost estimates and budget holds; providers' own tokenizers
differ by a few percent, and their reported usage settles a request's real cost.

Two bounds keep counting cheap on the request path (``make bench BENCH=tokens`` measures it):
a cache of recently counted texts (an agent resends its whole conversation every turn), and a
text over ``EXACT_CHARS`` characters is counted exactly on its first ``EXACT_CHARS`` and
extrapolated at their tokens per character (byte-pair encoding slows down on long runs without
spaces: a 1 MB body of one letter would hold the event loop for about a second).
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Final

from intent_router.exceptions import TokenizerUnavailable

#: litellm ships cl100k_base in tiktoken's cache layout: the file is named by the SHA-1 of the
#: URL tiktoken would fetch it from.
BUNDLED_FILE: Final = ("litellm_core_utils", "tokenizers", "9b5ad71b2ce5302211f9c61530b329a4922fc6a4")
#: tiktoken's expected SHA-256 of cl100k_base.tiktoken (tiktoken_ext.openai_public).
CL100K_SHA256: Final = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
#: cl100k_base's pre-tokenizer, as tiktoken_ext.openai_public defines it (a test compares them).
CL100K_PATTERN: Final = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
CL100K_SPECIAL: Final = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}

#: Texts up to this many characters are counted exactly (8,000 tokens or so).
EXACT_CHARS: Final = 32_768
#: The cache holds texts of at most this many characters in all (a few MB).
CACHE_CHARS: Final = 4_000_000


def bundled_encoding_path() -> Path:
    """Where litellm's copy of cl100k_base is, without importing litellm."""
    spec = find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerUnavailable("litellm is not installed: its bundled cl100k_base is the token counter's")
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*BUNDLED_FILE)


def load_cl100k(path: Path) -> Any:
    """cl100k_base as a ``tiktoken.Encoding`` from ``path`` (tiktoken's file format)."""
    import tiktoken

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TokenizerUnavailable(f"cannot read cl100k_base at {path}: {exc}") from exc
    if hashlib.sha256(data).hexdigest() != CL100K_SHA256:
        raise TokenizerUnavailable(f"{path} is not tiktoken's cl100k_base (SHA-256 differs)")
    ranks = {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in data.splitlines() if line)}
    encoding = tiktoken.Encoding("cl100k_base", pat_str=CL100K_PATTERN, mergeable_ranks=ranks,
                                 special_tokens=dict(CL100K_SPECIAL))
    # The encoder (Rust) holds its own copy of the ranks; tiktoken keeps this Python one only to
    # pickle the encoding, which nothing here does: about 15 MB less in every worker.
    encoding._mergeable_ranks = {}
    return encoding


class TokenCounter:
    """cl100k_base tokens of a text, special tokens counted as plain text; recently counted
    texts are remembered (least recently used first out, ``cache_chars`` characters in all)."""

    def __init__(self, encoding: Any, exact_chars: int = EXACT_CHARS, cache_chars: int = CACHE_CHARS) -> None:
        self.encoding = encoding
        self._encode = encoding.encode_ordinary
        self.exact_chars = exact_chars
        self.cache_chars = cache_chars
        self._cache: OrderedDict[str, int] = OrderedDict()
        self._cached_chars = 0
        self._lock = threading.Lock()

    def count(self, text: str) -> int:
        """The tokens of ``text``: exact up to ``exact_chars`` characters, extrapolated beyond."""
        if not text:
            return 0
        with self._lock:
            known = self._cache.get(text)
            if known is not None:
                self._cache.move_to_end(text)
                return known
        tokens = self._tokens(text)
        self._remember(text, tokens)
        return tokens

    def _tokens(self, text: str) -> int:
        if len(text) <= self.exact_chars:
            return len(self._encode(text))
        head = len(self._encode(text[: self.exact_chars]))
        return head + round(head * (len(text) - self.exact_chars) / self.exact_chars)

    def _remember(self, text: str, tokens: int) -> None:
        if len(text) > self.cache_chars // 4:  # one text never takes over the cache
            return
        with self._lock:
            if text in self._cache:
                return
            self._cache[text] = tokens
            self._cached_chars += len(text)
            while self._cached_chars > self.cache_chars:
                evicted, _ = self._cache.popitem(last=False)
                self._cached_chars -= len(evicted)


@cache
def default_counter() -> TokenCounter:
    """The process's counter over litellm's bundled cl100k_base (loaded once, on first use)."""
    return TokenCounter(load_cl100k(bundled_encoding_path()))


def count_tokens(text: str) -> int:
    """cl100k_base tokens of ``text`` (see :class:`TokenCounter`)."""
    return default_counter().count(text)


def count_message_tokens(messages: Iterable[Any]) -> int:
    """The tokens of every text part of an OpenAI conversation's messages."""
    total = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += count_tokens(content)
        elif isinstance(content, list):
            total += sum(count_tokens(str(part.get("text") or "")) for part in content if isinstance(part, dict))
    return total
