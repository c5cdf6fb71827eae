import os
import socket

import pytest

from intent_router.exceptions import TokenizerUnavailable
from intent_router.tokens import (
    CL100K_PATTERN,
    CL100K_SPECIAL,
    TokenCounter,
    bundled_encoding_path,
    count_message_tokens,
    count_tokens,
    default_counter,
    load_cl100k,
)


def test_tokens_are_counted_offline_with_the_bundled_cl100k_encoding() -> None:
    assert count_tokens("rename getUser to fetchUser everywhere") == 6
    assert count_tokens("") == 0
    assert count_tokens("<|endoftext|>") > 1  # special tokens are plain text here


def test_the_bundled_copy_is_tiktokens_own_cl100k_base_and_loads_without_a_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tiktoken

    # tiktoken reads its cache directory first: pointed at litellm's copy, it fetches nothing.
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(bundled_encoding_path().parent))
    theirs = tiktoken.get_encoding("cl100k_base")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the token counter tried to connect")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", os.devnull)  # tiktoken's own loader would fetch
    ours = load_cl100k(bundled_encoding_path())
    assert ours._pat_str == theirs._pat_str == CL100K_PATTERN
    assert ours._special_tokens == theirs._special_tokens == CL100K_SPECIAL
    text = "def f(x):\n    return x ** 2  # 'll ve re\n\n\t12345 ünïcödé 🙂 <|endoftext|>"
    assert ours.encode_ordinary(text) == theirs.encode_ordinary(text)


def test_a_file_that_is_not_cl100k_base_is_refused(tmp_path) -> None:
    forged = tmp_path / "cl100k"
    forged.write_bytes(b"YQ== 0\n")
    with pytest.raises(TokenizerUnavailable, match="SHA-256"):
        load_cl100k(forged)
    with pytest.raises(TokenizerUnavailable, match="cannot read"):
        load_cl100k(tmp_path / "missing")


class CountingEncoding:
    """The real encoding, counting how many times it is asked to encode, and how much."""

    def __init__(self) -> None:
        self.calls = self.chars = 0
        self._real = default_counter().encoding.encode_ordinary

    def encode_ordinary(self, text: str) -> list[int]:
        self.calls += 1
        self.chars += len(text)
        return self._real(text)


def test_repeated_texts_are_counted_once() -> None:
    encoding = CountingEncoding()
    counter = TokenCounter(encoding)
    assert [counter.count("hello world") for _ in range(3)] == [2, 2, 2]
    assert encoding.calls == 1


def test_the_cache_keeps_the_most_recent_texts_within_its_size() -> None:
    encoding = CountingEncoding()
    counter = TokenCounter(encoding, cache_chars=40)
    for text in ("a" * 10, "b" * 10, "c" * 10, "d" * 10, "e" * 10):  # 50 characters: "a" goes
        counter.count(text)
    counter.count("e" * 10)
    assert encoding.calls == 5
    counter.count("a" * 10)
    assert encoding.calls == 6
    counter.count("x" * 11)  # over a quarter of the cache: counted, never cached
    counter.count("x" * 11)
    assert encoding.calls == 8


def test_a_long_text_is_counted_on_its_head_and_extrapolated() -> None:
    encoding = default_counter().encoding
    counter = TokenCounter(encoding, exact_chars=1000)
    words = "the quick brown fox jumps over the lazy dog " * 100  # 4,400 characters
    exact = len(encoding.encode_ordinary(words))
    assert counter.count(words) != exact  # extrapolated ...
    assert abs(counter.count(words) - exact) <= 0.01 * exact  # ... within 1% on even text
    assert counter.count(words[:1000]) == len(encoding.encode_ordinary(words[:1000]))


def test_a_conversation_counts_every_text_part() -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "hello world"}, {"type": "image_url"}],
        },
        {"role": "assistant", "content": None},
        "not a message",
    ]
    assert count_message_tokens(messages) == count_tokens("You are terse.") + count_tokens(
        "hello world"
    )


def test_one_call_encodes_at_most_its_budget_and_estimates_the_rest() -> None:
    encoding = CountingEncoding()
    counter = TokenCounter(encoding, exact_chars=1000, call_chars=2000)
    messages = [
        f"message {i}: the quick brown fox jumps over the lazy dog. " * 15 for i in range(10)
    ]
    exact = sum(len(encoding._real(m)) for m in messages)  # about 870 characters each
    first = counter.count_all(messages)
    assert encoding.chars <= 2000 + 1000  # the budget, overrun by one text at most
    assert abs(first - exact) <= 0.02 * exact
    for _ in range(5):  # each call encodes the next texts it has not seen, until all are known
        counter.count_all(messages)
    assert counter.count_all(messages) == exact


def test_bounds_below_one_character_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        TokenCounter(default_counter().encoding, call_chars=0)
