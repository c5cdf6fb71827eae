"""What an upstream sends is checked before use: completions, stream events, usage, SSE lines,
Retry-After. Properties over arbitrary input (hypothesis), and the hostile values by name."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import format_datetime

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from intent_router.config import UpstreamLimits, load_config, parse_config
from intent_router.exceptions import ConfigError, ProviderError
from intent_router.providers.upstream_validation import (
    MAX_TOKENS,
    SSELineSplitter,
    checked_chunk,
    checked_completion,
    checked_events,
    checked_usage,
    chunk_usage,
    encodable,
    error_message,
    parse_completion,
    parse_retry_after,
    token_count,
    usage_tokens,
)
from intent_router.router import usage_cost
from intent_router.routing.cooldown import CooldownTracker
from intent_router.routing.retry_rules import FailureKind, Verdict, failure_from_error, verdict

OLLAMA = load_config().deployments["qwen-32b-local"]  # retry_on: oom, timeout
GPT = load_config().deployments["gpt-4o"]
GOOD = {
    "id": "c1",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _is_malformed(call, *args) -> bool:
    try:
        call(*args)
    except ProviderError as exc:
        assert exc.kind == "malformed_response"
        return True
    return False


# -- usage --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["many", -500, float("nan"), float("inf"), [1], 10**300, 1.5, True, {}]
)
def test_a_hostile_token_count_is_malformed(value) -> None:
    assert _is_malformed(token_count, value, "prompt_tokens")
    assert _is_malformed(checked_usage, {"prompt_tokens": value})


@given(JSON_VALUES)
def test_a_token_count_is_accepted_only_as_a_whole_number_in_range(value) -> None:
    try:
        count = token_count(value, "prompt_tokens")
    except ProviderError:
        return
    assert count is None or (isinstance(count, int) and 0 <= count <= MAX_TOKENS)


@given(JSON_VALUES, st.floats(0, 1e6), st.floats(0, 1e6))
def test_a_cost_from_any_usage_is_finite_and_never_negative(usage, price_in, price_out) -> None:
    from dataclasses import replace

    deployment = replace(GPT, input_cost_per_mtok=price_in, output_cost_per_mtok=price_out)
    for value in (usage, {"prompt_tokens": usage, "completion_tokens": usage}):
        cost = usage_cost(deployment, value)
        assert math.isfinite(cost) and cost >= 0
        prompt_tokens, completion_tokens = usage_tokens(value)
        assert 0 <= prompt_tokens <= MAX_TOKENS and 0 <= completion_tokens <= MAX_TOKENS


# -- completions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"choices": "yes"},
        {"choices": [1]},
        {"choices": []},
        {"choices": None},
        {"choices": [{"message": "yes"}]},
        {"id": {"a": 1}},
        {"id": "i" * 10_000},
        {"usage": "lots"},
        {"usage": {"completion_tokens": -1}},
    ],
)
def test_a_completion_breaking_the_contract_is_malformed(change) -> None:
    assert _is_malformed(checked_completion, {**GOOD, **change})
    assert _is_malformed(parse_completion, json.dumps({**GOOD, **change}).encode())


def test_a_good_completion_passes_unchanged() -> None:
    assert parse_completion(json.dumps(GOOD).encode()) == GOOD


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "broken", "choices": [',
        b"<html></html>",
        b'{"usage": {"prompt_tokens": NaN}, "choices": []}',
        b'{"choices": [{"message": {"content": "\\udfff"}}]}',
        b'{"choices": [{"message": {"content": "\xff"}}]}',
        b"[" * 100_000 + b"]" * 100_000,
        b"",
    ],
)
def test_a_body_that_is_not_strict_json_is_malformed(body: bytes) -> None:
    assert _is_malformed(parse_completion, body)


@given(JSON_VALUES)
def test_whatever_parses_as_a_completion_can_be_sent_on(value) -> None:
    """msgspec refuses at decoding what it could not encode: a passed completion is sendable."""
    try:
        data = json.dumps({**GOOD, "extra": value}).encode()
    except ValueError:
        return
    try:
        completion = parse_completion(data)
    except ProviderError:
        return
    msgspec.json.encode(completion)
    assert encodable(completion) is completion


def test_a_library_built_completion_with_a_lone_surrogate_is_malformed() -> None:
    bad = {**GOOD, "choices": [{"message": {"content": "boom \udfff"}}]}
    assert _is_malformed(encodable, checked_completion(bad))


# -- stream events ---------------------------------------------------------------------------------


def _line(chunk: dict) -> bytes:
    return b"data: " + json.dumps(chunk).encode()


CHUNK = {"id": "c1", "choices": [{"index": 0, "delta": {"content": "hi"}}]}


@pytest.mark.parametrize(
    "line",
    [
        b"hello",
        b"event: message",
        b"data: {broken",
        b'data: {"error": {"message": "overloaded"}}',
        _line({**CHUNK, "choices": "yes"}),
        _line({**CHUNK, "choices": [{"delta": "yes"}]}),
        _line({**CHUNK, "usage": {"prompt_tokens": -500}}),
        b'data: {"choices": [], "usage": {"prompt_tokens": NaN}}',
    ],
)
def test_a_stream_line_breaking_the_contract_is_malformed(line: bytes) -> None:
    assert _is_malformed(checked_chunk, line)


def test_only_the_redacted_error_of_an_upstream_reaches_a_message() -> None:
    with pytest.raises(ProviderError) as info:
        checked_chunk(
            b'data: {"error": {"message": "bad key sk-123"}}',
            lambda text: text.replace("sk-123", "[R]"),
        )
    assert str(info.value) == "upstream sent an error event: bad key [R]"
    with pytest.raises(ProviderError) as info:
        checked_chunk(_line({**CHUNK, "choices": "Bearer sk-123"}))
    assert "sk-123" not in str(info.value) and "a str of 13 characters" in str(info.value)
    assert (
        error_message(b"x" * 295 + b"sk-123456", lambda text: text.replace("sk-123456", "[R]"))
        == "x" * 295 + "[R]"
    )


def test_stream_lines_that_keep_the_contract() -> None:
    assert checked_chunk(_line(CHUNK)) == CHUNK
    assert checked_chunk(b"data:[DONE]") is None and checked_chunk(b"data: [DONE]") is None
    usage = {"prompt_tokens": 3, "completion_tokens": 4}
    assert chunk_usage(_line({"choices": [], "usage": usage})) == usage
    assert chunk_usage(_line({"choices": [], "usage": {"prompt_tokens": "many"}})) is None


async def _lines(*lines: bytes) -> AsyncIterator[bytes]:
    for line in lines:
        yield line


async def _collect(lines: AsyncIterator[bytes]) -> list[bytes]:
    return [line async for line in lines]


def test_checked_events_pass_chunks_and_later_comments_and_end_at_done() -> None:
    got = asyncio.run(
        _collect(
            checked_events(
                _lines(
                    b": processing",
                    _line(CHUNK),
                    b"event: x",
                    b": alive",
                    _line(CHUNK),
                    b"data: [DONE]",
                    b"trailing junk",
                )
            )
        )
    )
    assert got == [_line(CHUNK), b": alive", _line(CHUNK), b"data: [DONE]"]


@pytest.mark.parametrize(
    "lines",
    [
        (b"data: [DONE]",),
        (),
        (b"event: message", _line(CHUNK)),
        (b"not sse",),
        (_line({"error": "x"}),),
    ],
)
def test_a_stream_that_breaks_the_contract_before_its_first_chunk_is_malformed(lines) -> None:
    assert _is_malformed(lambda: asyncio.run(_collect(checked_events(_lines(*lines)))))


# -- SSE lines ---------------------------------------------------------------------------------------


@given(
    st.lists(
        st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")), max_size=8
    ),
    st.lists(st.integers(1, 20), min_size=1, max_size=10),
    st.booleans(),
)
def test_lines_split_the_same_however_the_bytes_arrive(lines, cuts, crlf) -> None:
    data = b"".join(line + (b"\r\n" if crlf else b"\n") for line in lines)
    splitter, got, position = SSELineSplitter(64), [], 0
    for cut in cuts * (len(data) // max(1, sum(cuts)) + 1):
        got += splitter.feed(data[position : position + cut])
        position += cut
    got += splitter.feed(data[position:]) + splitter.close()
    assert got == [line for line in lines if line]


@given(st.integers(0, 20), st.integers(1, 5000), st.integers(1, 4096))
def test_a_line_over_the_limit_is_refused_after_the_lines_before_it(before, extra, piece) -> None:
    data = b"data: ok\n" * before + b"x" * (100 + extra) + b"\ndata: after\n"
    splitter, got = SSELineSplitter(100), []
    with pytest.raises(ProviderError, match="longer than 100 bytes"):
        for start in range(0, len(data), piece):
            got += splitter.feed(data[start : start + piece])
        got += splitter.close()
    assert got == [b"data: ok"] * before


# -- Retry-After ---------------------------------------------------------------------------------------

NOW = 1_800_000_000.0


def _date(offset_s: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + offset_s, UTC), usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("99999999999", 300.0),
        ("inf", 300.0),
        ("1e400", 300.0),
        (_date(120), 120.0),
        (_date(86_400 * 365), 300.0),
        ("Sun, 06 Nov 1994 08:49:37 GMT", None),
        ("-5", None),
        ("0", None),
        ("nan", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("Sun, 06 Nov 1994 08:49:37", None),  # no zone: not an HTTP date
    ],
)
def test_retry_after_seconds_and_http_dates_capped(value, expected) -> None:
    assert parse_retry_after(value, cap_s=300.0, now=lambda: NOW) == expected


@given(st.text(max_size=40))
def test_retry_after_is_none_or_within_the_cap(value: str) -> None:
    seconds = parse_retry_after(value, cap_s=60.0, now=lambda: NOW)
    assert seconds is None or 0 < seconds <= 60.0


def test_a_cooldown_never_outlasts_the_retry_after_cap() -> None:
    clock = [0.0]
    tracker = CooldownTracker(100, 30, clock=lambda: clock[0], max_retry_after_s=5.0)
    tracker.record_failure("a", retry_after_s=10**9)
    tracker.record_failure("b", retry_after_s=float("nan"))
    assert not tracker.available("a") and tracker.available("b")
    clock[0] = 5.0
    assert tracker.available("a")


# -- error bodies and retry rules ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": {"message": "boom \\udfff"}}', "boom \ufffd"),
        (b'{"error": {"message": "nul \\u0000 here"}}', "nul \ufffd here"),
        (b'{"error": {"message": ["a", 1]}}', "a list of 2 items"),
        (b"bad \xff\xfe bytes", "bad \ufffd\ufffd bytes"),
        (b'{"error": "plain"}', "plain"),
    ],
)
def test_an_error_body_becomes_text_safe_anywhere(body: bytes, message: str) -> None:
    assert error_message(body) == message


@given(st.binary(max_size=200))
def test_any_error_body_gives_encodable_text(body: bytes) -> None:
    text = error_message(body)
    text.encode("utf-8")
    assert "\x00" not in text and len(text) <= 300


@pytest.mark.parametrize("kind", ["unreachable", "malformed_response"])
def test_unreachable_and_malformed_are_retried_on_every_deployment(kind: str) -> None:
    failure = failure_from_error(ProviderError("x", kind=kind))
    assert failure.kind is FailureKind(kind)
    for deployment in (OLLAMA, GPT):
        assert verdict(failure, deployment) is Verdict.NEXT_DEPLOYMENT


# -- configuration --------------------------------------------------------------------------------


def test_the_upstream_limits_default_as_documented() -> None:
    assert load_config().upstream == UpstreamLimits(8 * 2**20, 2**20, 60.0, 600.0, 300.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_body_bytes", 10),
        ("max_sse_line_bytes", 2**31),
        ("stream_idle_s", 0),
        ("stream_total_s", "long"),
        ("max_retry_after_s", -1),
        ("unknown", 1),
    ],
)
def test_a_bad_upstream_limit_names_its_field(field: str, value) -> None:
    import yaml

    from intent_router.config import DEFAULT_CONFIG

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["router"]["upstream"] = {field: value}
    with pytest.raises(ConfigError, match=rf"router\.upstream\.{field}"):
        parse_config(raw)
