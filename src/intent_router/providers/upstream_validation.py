"""Everything an upstream sends is untrusted: each value is checked here before the router uses it.

A completion must be a JSON object with a non-empty list of choice objects; a stream a sequence of
SSE ``data:`` events, each a chunk object with a list of choices; token counts whole numbers in
[0, 2**31); ids short strings. Anything else is a ``malformed_response`` ProviderError, which the
chain walk retries on the next deployment. JSON is decoded by msgspec, strictly: NaN, infinities,
lone surrogates and invalid UTF-8 are refused, so whatever passes can be sent on to the client.
Retry-After is read here too (seconds or an HTTP date). Pure functions, no I/O.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from email.utils import parsedate_to_datetime
from typing import Any, Final

import msgspec

from intent_router.exceptions import ProviderError
from intent_router.text import clean_text

MAX_TOKENS: Final[int] = 2**31 - 1  # the decision log's column; no real answer comes near
MAX_ID_CHARS: Final[int] = 512
TOKEN_FIELDS: Final[tuple[str, ...]] = ("prompt_tokens", "completion_tokens", "total_tokens")
DONE: Final[bytes] = b"data: [DONE]"
_decode = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()


def malformed(reason: str) -> ProviderError:
    """The error of an answer the router cannot use: retried on the next deployment."""
    return ProviderError(f"upstream sent {reason}", kind="malformed_response")


def token_count(value: Any, field: str) -> int | None:
    """A usage count: None when absent, else a whole number in [0, 2**31) or malformed."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        raise malformed(f"usage.{field} that is not a token count: {_sample(value)}")
    return value


def checked_usage(usage: Any) -> dict[str, Any] | None:
    """``usage`` when absent or an object whose token counts are valid; malformed otherwise."""
    if usage is None:
        return None
    if not isinstance(usage, dict):
        raise malformed(f"usage that is not an object: {_sample(usage)}")
    for field in TOKEN_FIELDS:
        token_count(usage.get(field), field)
    cache_tokens(usage)
    return usage


def cache_tokens(usage: dict[str, Any]) -> tuple[int, int]:
    """(read from, written to) the prompt cache, both within ``prompt_tokens``: OpenAI's
    ``prompt_tokens_details.cached_tokens``, litellm's ``cache_write_tokens`` beside it, or
    Anthropic's names ``cache_read_input_tokens`` / ``cache_creation_input_tokens`` at the top
    (litellm counts both inside ``prompt_tokens``). 0 when absent; malformed when not a token
    count or more than the prompt."""
    details = usage.get("prompt_tokens_details")
    if details is not None and not isinstance(details, dict):
        raise malformed(f"usage.prompt_tokens_details that is not an object: {_sample(details)}")
    details = details or {}
    read = token_count(details.get("cached_tokens"), "prompt_tokens_details.cached_tokens")
    write = token_count(
        details.get("cache_write_tokens"), "prompt_tokens_details.cache_write_tokens"
    )
    top_read = token_count(usage.get("cache_read_input_tokens"), "cache_read_input_tokens")
    top_write = token_count(usage.get("cache_creation_input_tokens"), "cache_creation_input_tokens")
    read = (read if read is not None else top_read) or 0
    write = (write if write is not None else top_write) or 0
    prompt = token_count(usage.get("prompt_tokens"), "prompt_tokens")
    if prompt is not None and read + write > prompt:
        raise malformed(f"usage with {read + write} cache tokens over its {prompt} prompt tokens")
    return read, write


def usage_tokens(usage: Any) -> tuple[int, int]:
    """(prompt, completion) tokens of a usage object for costs: 0 for anything not a valid
    count, so a cost is never negative, non-finite or an overflow."""
    if not isinstance(usage, dict):
        return 0, 0
    counts = []
    for field in ("prompt_tokens", "completion_tokens"):
        try:
            counts.append(token_count(usage.get(field), field) or 0)
        except ProviderError:
            counts.append(0)
    return counts[0], counts[1]


def usage_input_split(usage: Any) -> tuple[int, int, int, int]:
    """(uncached, cached, cache-write, completion) tokens of a usage object for costs: all 0
    for a usage that is not valid, so a cost is never negative, non-finite or an overflow;
    no cache split (all input uncached) when only the cache counts are invalid."""
    prompt, completion = usage_tokens(usage)
    try:
        read, write = cache_tokens(usage) if isinstance(usage, dict) else (0, 0)
    except ProviderError:
        read, write = 0, 0
    if read + write > prompt:
        read, write = 0, 0
    return prompt - read - write, read, write, completion


def parse_completion(data: bytes) -> dict[str, Any]:
    """A non-streaming answer's body, decoded and checked."""
    return checked_completion(_json(data, "a body that is not JSON"))


def checked_completion(completion: Any) -> dict[str, Any]:
    """A completion object (from any provider path) that can be used and sent on as it is."""
    if not isinstance(completion, dict):
        raise malformed("a completion that is not an object")
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices:
        raise malformed(f"a completion without a list of choices: {_sample(choices)}")
    for choice in choices:
        if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
            raise malformed(f"a choice without a message object: {_sample(choice)}")
    _check_id(completion.get("id"))
    checked_usage(completion.get("usage"))
    return completion


def encodable(completion: dict[str, Any], max_bytes: int | None = None) -> dict[str, Any]:
    """``completion`` when it can be sent to the client as JSON (an object built by a library,
    not decoded here, may hold a lone surrogate) within ``max_bytes``; malformed otherwise."""
    try:
        size = len(_encode.encode(completion))
    except (TypeError, ValueError, OverflowError) as exc:  # UnicodeEncodeError is a ValueError
        raise malformed(
            f"a completion that cannot be sent on as JSON ({type(exc).__name__})"
        ) from exc
    if max_bytes is not None and size > max_bytes:
        raise malformed(f"a completion of {size} bytes, over the limit of {max_bytes}")
    return completion


def checked_chunk(
    line: bytes, redact: Callable[[str], str] = lambda text: text
) -> dict[str, Any] | None:
    """The chunk of one SSE ``data:`` line (None for ``data: [DONE]``); malformed otherwise (an
    error event's message, the one upstream text kept, ``redact``-ed)."""
    if not line.startswith(b"data:"):
        raise malformed(f"a stream line that is not an SSE data event: {_sample(line)}")
    payload = line[5:].strip()
    if payload == b"[DONE]":
        return None
    chunk = _json(payload, "a stream event that is not JSON")
    if not isinstance(chunk, dict):
        raise malformed("a stream event that is not an object")
    if "error" in chunk and "choices" not in chunk:
        raise malformed(f"an error event: {_error_text(chunk['error'], redact)}")
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise malformed(f"a stream chunk without a list of choices: {_sample(choices)}")
    for choice in choices:
        if "delta" in choice and not isinstance(choice["delta"], (dict, type(None))):
            raise malformed(f"a stream delta that is not an object: {_sample(choice['delta'])}")
    _check_id(chunk.get("id"))
    checked_usage(chunk.get("usage"))
    return chunk


def chunk_usage(line: bytes) -> dict[str, Any] | None:
    """The valid ``usage`` of a stream line, if it has one (a usage chunk, or a provider that
    sends usage in every chunk); None for anything else."""
    if b'"usage"' not in line:
        return None
    try:
        chunk = checked_chunk(line)
    except ProviderError:
        return None
    usage = chunk.get("usage") if chunk is not None else None
    return usage if isinstance(usage, dict) else None


async def checked_events(
    lines: AsyncGenerator[bytes, None], redact: Callable[[str], str] = lambda text: text
) -> AsyncIterator[bytes]:
    """An upstream's SSE lines, checked: comments before the first chunk and fields other than
    ``data`` dropped, every data event a valid chunk, the stream ending at ``data: [DONE]``. The first event must be a
    chunk (not [DONE], not an error), so that a stream that breaks its contract at once is
    retried on the next deployment; a later violation raises where it occurs."""
    first = True
    async with aclosing(lines) as upstream:
        async for line in upstream:
            if line.startswith(b":"):  # a comment (a keep-alive): passed on once the stream began
                if not first:
                    yield line
                continue
            if not first and line.startswith((b"event:", b"id:", b"retry:")):
                continue
            chunk = checked_chunk(line, redact)
            if chunk is None:
                if first:
                    raise malformed("a stream that ended before its first chunk")
                yield DONE
                return
            first = False
            yield line
    if first:
        raise malformed("an empty stream")


class SSELineSplitter:
    """Splits a byte stream into lines (``\\n`` or ``\\r\\n``, empty lines dropped), refusing any
    line longer than ``max_line_bytes`` as soon as it is known to be. The lines before a refused
    one are returned first; the refusal is raised by the next call."""

    def __init__(self, max_line_bytes: int) -> None:
        self._max = max_line_bytes
        self._buffer = bytearray()
        self._refused: ProviderError | None = None

    def feed(self, data: bytes) -> list[bytes]:
        self._raise_refusal()
        self._buffer += data
        lines: list[bytes] = []
        start = 0
        while (end := self._buffer.find(b"\n", start)) >= 0:
            if not self._keep(lines, bytes(self._buffer[start:end])):
                return self._refuse(lines)
            start = end + 1
        del self._buffer[:start]
        if len(self._buffer) > self._max:
            return self._refuse(lines)
        return lines

    def close(self) -> list[bytes]:
        """The last line, when the stream ended without a line break after it."""
        self._raise_refusal()
        lines: list[bytes] = []
        if not self._keep(lines, bytes(self._buffer)):
            return self._refuse(lines)
        self._buffer.clear()
        return lines

    def _keep(self, lines: list[bytes], line: bytes) -> bool:
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > self._max:
            return False
        if line:
            lines.append(line)
        return True

    def _refuse(self, lines: list[bytes]) -> list[bytes]:
        self._buffer.clear()
        self._refused = malformed(f"a stream line longer than {self._max} bytes")
        if not lines:
            self._raise_refusal()
        return lines

    def _raise_refusal(self) -> None:
        if self._refused is not None:
            raise self._refused


def parse_retry_after(
    value: str | None, cap_s: float, now: Callable[[], float] = time.time
) -> float | None:
    """Retry-After in seconds from now: a number of seconds or an HTTP date, at most ``cap_s``;
    None when absent, unreadable, negative or already past."""
    if value is None:
        return None
    text = value.strip()
    seconds: float | None
    try:
        seconds = float(text)
    except ValueError:
        seconds = _seconds_until(text, now)
    if seconds is None or math.isnan(seconds) or seconds <= 0:
        return None
    return min(seconds, cap_s)


def error_message(data: bytes, redact: Callable[[str], str] = lambda text: text) -> str:
    """The message of an upstream's error body, as text safe to log, store and send on
    (``error.message`` of a JSON body, else the body itself), ``redact``-ed before it is cut
    to 300 characters (a cut must not leave half a key behind)."""
    try:  # the stdlib's lenient parser: a lone surrogate in a message is replaced, not refused
        message = _error_text(json.loads(data)["error"], redact)
    except (ValueError, KeyError, TypeError, RecursionError):
        message = redact(clean_text(data[:4096].decode("utf-8", "replace")) or "")
    return message[:300]


def _error_text(error: Any, redact: Callable[[str], str] = lambda text: text) -> str:
    message = error.get("message") if isinstance(error, dict) else error
    text = message if isinstance(message, str) else _sample(message)
    return redact(clean_text(text[:4096]) or "")[:300]


def _seconds_until(text: str, now: Callable[[], float]) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        return None
    try:
        return when.timestamp() - now()
    except (OverflowError, ValueError):
        return None


def _json(data: bytes, problem: str) -> Any:
    try:
        return _decode.decode(data)
    except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError) as exc:
        raise malformed(f"{problem} ({type(exc).__name__})") from exc


def _check_id(value: Any) -> None:
    if value is not None and (not isinstance(value, str) or len(value) > MAX_ID_CHARS):
        raise malformed(f"an id that is not a short string: {_sample(value)}")


def _sample(value: Any) -> str:
    """What an untrusted value is, for an error message: a number as it is, anything else only
    by type and size (an upstream's text may echo a key or the prompt)."""
    if value is None or isinstance(value, (bool, float)):
        return repr(value)
    if isinstance(value, int):
        return repr(value) if abs(value) < 10**30 else "an integer of over 30 digits"
    size = f" of {len(value)}" if isinstance(value, (str, bytes, list, dict)) else ""
    units: dict[type, str] = {str: " characters", bytes: " bytes", list: " items", dict: " keys"}
    unit = units.get(type(value), "")
    return f"a {type(value).__name__}{size}{unit}"
