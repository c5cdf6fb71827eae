"""The one token counter of serving, budgets and evaluation: tiktoken's cl100k_base.

The encoding is read from the copy litellm bundles (checked against tiktoken's own SHA-256 of
it), never fetched. Counts are for cost estimates and budget holds; providers' own tokenizers
differ by a few percent, and their reported usage settles a request's real cost.

Bounds keep counting cheap on the request path (``make bench BENCH=tokens`` measures it): a
cache of recently counted texts (an agent resends its whole conversation every turn); a text
over ``EXACT_CHARS`` characters counted on its head and extrapolated; at most ``CALL_CHARS``
characters of new text encoded per call, the rest estimated at the ratio measured. Byte-pair
encoding costs up to about 1 us a character on text without spaces: encoding a whole 1 MiB
body of one letter held the event loop for seconds.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Final

from intent_router.exceptions import TokenizerUnavailable

#: litellm ships cl100k_base in tiktoken's cache layout: the file is named by the SHA-1 of the
#: URL tiktoken would fetch it from.
BUNDLED_FILE: Final = (
    "litellm_core_utils",
    "tokenizers",
    "9b5ad71b2ce5302211f9c61530b329a4922fc6a4",
)
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

#: Texts up to this many characters are counted exactly (about 4,000 tokens).
EXACT_CHARS: Final = 16_384
#: At most this many characters of new text are encoded per call (a request's conversation).
CALL_CHARS: Final = 32_768
#: The cache holds texts of at most this many characters in all (a few MB).
CACHE_CHARS: Final = 4_000_000


def bundled_encoding_path() -> Path:
    """Where litellm's copy of cl100k_base is, without importing litellm."""
    spec = find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerUnavailable(
            "litellm is not installed: its bundled cl100k_base is the token counter's"
        )
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
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in data.splitlines() if line)
    }
    encoding = tiktoken.Encoding(
        "cl100k_base",
        pat_str=CL100K_PATTERN,
        mergeable_ranks=ranks,
        special_tokens=dict(CL100K_SPECIAL),
    )
    # The encoder (Rust) holds its own copy of the ranks; tiktoken keeps this Python one only to
    # pickle the encoding, which nothing here does: about 15 MB less in every worker.
    encoding._mergeable_ranks = {}
    return encoding


class TokenCounter:
    """cl100k_base tokens of texts, special tokens counted as plain text.

    A text is counted exactly up to ``exact_chars`` characters, beyond that on its first
    ``exact_chars`` and extrapolated; counted texts are remembered (least recently used out
    first, ``cache_chars`` characters in all). One call encodes at most ``call_chars``
    characters of texts it has not seen: the rest of a huge conversation is estimated at the
    tokens per character measured in the same call, so no request holds the event loop for
    longer than encoding ``call_chars`` characters takes, whatever its size.
    """

    def __init__(
        self,
        encoding: Any,
        exact_chars: int = EXACT_CHARS,
        call_chars: int = CALL_CHARS,
        cache_chars: int = CACHE_CHARS,
    ) -> None:
        if min(exact_chars, call_chars) < 1:
            raise ValueError("exact_chars and call_chars must be at least 1")
        self.encoding = encoding
        self._encode = encoding.encode_ordinary
        self.exact_chars = exact_chars
        self.call_chars = call_chars
        self.cache_chars = cache_chars
        self._cache: OrderedDict[str, int] = OrderedDict()
        self._cached_chars = 0
        self._lock = threading.Lock()

    def count(self, text: str) -> int:
        """The tokens of ``text``."""
        return self.count_all((text,))

    def count_all(self, texts: Iterable[str]) -> int:
        """The tokens of all ``texts`` together."""
        total, budget = 0, self.call_chars
        measured_chars = measured_tokens = unmeasured_chars = 0
        for text in texts:
            if not text:
                continue
            tokens = self._cached(text)
            if tokens is None and budget > 0:
                tokens = self._tokens(text)
                budget -= min(len(text), self.exact_chars)
                self._remember(text, tokens)
            if tokens is None:
                unmeasured_chars += len(text)
                continue
            total += tokens
            measured_chars, measured_tokens = measured_chars + len(text), measured_tokens + tokens
        if unmeasured_chars:
            total += round(unmeasured_chars * measured_tokens / measured_chars)
        return total

    def _tokens(self, text: str) -> int:
        if len(text) <= self.exact_chars:
            return len(self._encode(text))
        head = len(self._encode(text[: self.exact_chars]))
        return head + round(head * (len(text) - self.exact_chars) / self.exact_chars)

    def _cached(self, text: str) -> int | None:
        with self._lock:
            tokens = self._cache.get(text)
            if tokens is not None:
                self._cache.move_to_end(text)
            return tokens

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
    return default_counter().count_all(_message_texts(messages))


def _message_texts(messages: Iterable[Any]) -> Iterator[str]:
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            yield content
        elif isinstance(content, list):
            yield from (str(part.get("text") or "") for part in content if isinstance(part, dict))
