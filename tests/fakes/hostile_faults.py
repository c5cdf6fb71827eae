"""Hostile upstream modes for the fake fleet: answers that break the API's contract on purpose.

A FakeProvider started with ``hostile=True`` answers a request in one of these modes when the
request selects it: a ``[hostile:MODE]`` marker in any message, the model ``hostile:MODE``, or
an ``X-Hostile-Mode: MODE`` header. A fake without ``hostile`` ignores markers, so a fallback
behind a hostile deployment answers the same prompt normally. Each mode has a plain and a
streaming form (the request's ``stream``). A refused connection is not a mode (the connection
never reaches a fake): ``closed_port_url()`` gives a URL nothing listens on.

Sizes and rates are module constants, small enough that a test with small caps (a 64 KiB body,
0.5 s idle) spends well under a second per mode.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Protocol

MARKER = re.compile(r"\[hostile:([a-z0-9_]+)\]")
HEADER = "X-Hostile-Mode"
HUGE_BYTES = (
    4 * 1024 * 1024
)  # a huge body or SSE line (the issue's 50 MB, scaled to the tests' caps)
TRICKLE_INTERVAL_S = 0.05  # one byte (or one chunk, for ``endless``) this often ...
TRICKLE_FOR_S = 5.0  # ... for at most this long, or until the router hangs up


class Handler(Protocol):
    """What a mode needs of the fleet's request handler (BaseHTTPRequestHandler)."""

    wfile: Any
    connection: socket.socket
    close_connection: bool

    def send_response(self, code: int) -> None: ...
    def send_header(self, key: str, value: str) -> None: ...
    def end_headers(self) -> None: ...


def mode_of(body: Any, headers: Any) -> str | None:
    """The hostile mode a request selects (header, model name or marker), None for none."""
    if headers.get(HEADER):
        return str(headers.get(HEADER))
    if not isinstance(body, dict):
        return None
    model = body.get("model")
    if isinstance(model, str) and model.startswith("hostile:"):
        return model.split(":", 1)[1]
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        match = MARKER.search(content) if isinstance(content, str) else None
        if match:
            return match.group(1)
    return None


def answer(handler: Handler, mode: str, body: dict[str, Any]) -> None:
    """Answer in ``mode`` (plain or streaming, as the request asked); an unknown mode is a 400."""
    stream = bool(body.get("stream"))
    act = (STREAMING if stream else PLAIN).get(mode)
    try:
        if act is None:
            _send(
                handler,
                400,
                json.dumps({"error": {"message": f"unknown hostile mode {mode!r}"}}).encode(),
            )
        else:
            act(handler)
    except (BrokenPipeError, ConnectionResetError):  # the router hung up, as it should
        pass
    handler.close_connection = True


#: Ports where nothing listens, held for this process's life: bound and never listening, so
#: connecting is refused and no server started later (another test's service or fake, on a
#: free port the system picks) can take one. A port merely found free and released was taken
#: once by a service of a test running beside, which then answered its 404.
_CLOSED_PORTS: list[socket.socket] = []


def closed_port() -> int:
    """A loopback port where nothing listens, now or later in this test process."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    _CLOSED_PORTS.append(sock)
    return int(sock.getsockname()[1])


def closed_port_url() -> str:
    """``http://127.0.0.1:<port>/v1`` where nothing listens: connecting is refused."""
    return f"http://127.0.0.1:{closed_port()}/v1"


# -- what the modes send ---------------------------------------------------------------------------


def _completion(
    content: str = "ok from hostile",
    usage: str = '{"prompt_tokens": 3, "completion_tokens": 3}',
    choices: str | None = None,
    id_: str = '"chatcmpl-hostile"',
) -> bytes:
    """A completion as JSON text, with any part replaced by raw (possibly invalid) JSON."""
    message = json.dumps({"role": "assistant", "content": content})
    choices = choices or f'[{{"index": 0, "message": {message}, "finish_reason": "stop"}}]'
    return (
        f'{{"id": {id_}, "object": "chat.completion", "created": 1, "model": "hostile", '
        f'"choices": {choices}, "usage": {usage}}}'
    ).encode()


def _chunk(
    content: str = "ok",
    usage: str | None = None,
    choices: str | None = None,
    id_: str = '"chatcmpl-hostile"',
) -> bytes:
    delta = json.dumps({"content": content})
    choices = choices or f'[{{"index": 0, "delta": {delta}, "finish_reason": null}}]'
    extra = f', "usage": {usage}' if usage is not None else ""
    return (
        f'data: {{"id": {id_}, "object": "chat.completion.chunk", "created": 1, "model": "hostile", '
        f'"choices": {choices}{extra}}}\n\n'
    ).encode()


GOOD_STREAM = [_chunk("ok"), _chunk(" from"), _chunk(" hostile"), b"data: [DONE]\n\n"]
HUGE_CHUNK = _chunk("x" * HUGE_BYTES)


def _send(
    handler: Handler,
    code: int,
    data: bytes,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
    length: bool = True,
) -> None:
    handler.send_response(code)
    handler.send_header("Content-Type", content_type)
    if length:
        handler.send_header("Content-Length", str(len(data)))
    handler.send_header(
        "Connection", "close"
    )  # as it does: no pooled connection is left to go stale
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(data)
    handler.wfile.flush()


def _open_stream(handler: Handler, content_type: str = "text/event-stream") -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Cache-Control", "no-cache")
    handler.send_header("Connection", "close")
    handler.end_headers()


def _write(handler: Handler, *parts: bytes) -> None:
    for part in parts:
        handler.wfile.write(part)
        handler.wfile.flush()


def _trickle(handler: Handler, data: bytes) -> None:
    """``data`` one byte at a time, until it is sent, the time is up or the router hangs up."""
    ends = time.monotonic() + TRICKLE_FOR_S
    for index in range(len(data)):
        if time.monotonic() > ends:
            return
        _write(handler, data[index : index + 1])
        time.sleep(TRICKLE_INTERVAL_S)


def _status(
    code: int, raw_body: bytes, headers: dict[str, str] | None = None
) -> Callable[[Handler], None]:
    return lambda h: _send(h, code, raw_body, headers=headers)


def _ok(raw_body: bytes, content_type: str = "application/json") -> Callable[[Handler], None]:
    return lambda h: _send(h, 200, raw_body, content_type)


def _stream(*parts: bytes, content_type: str = "text/event-stream") -> Callable[[Handler], None]:
    def act(h: Handler) -> None:
        _open_stream(h, content_type)
        _write(h, *parts)

    return act


def _huge_chunked(h: Handler) -> None:
    """A valid-looking completion of HUGE_BYTES with no Content-Length: the length is only
    known by reading it all."""
    _open_stream(h, "application/json")
    head = b'{"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "'
    _write(h, head)
    piece = b"x" * 65536
    for _ in range(HUGE_BYTES // len(piece)):
        _write(h, piece)
    _write(h, b'"}}]}')


def _trickle_plain(h: Handler) -> None:
    body = _completion()
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(body)))
    h.send_header("Connection", "close")
    h.end_headers()
    _trickle(h, body)


def _trickle_stream(first: bytes = b"") -> Callable[[Handler], None]:
    def act(h: Handler) -> None:
        _open_stream(h)
        _write(h, first)
        _trickle(h, b"".join(GOOD_STREAM))

    return act


def _endless(h: Handler) -> None:
    """Valid chunks, one every TRICKLE_INTERVAL_S, never [DONE]: only a total limit ends it."""
    _open_stream(h)
    ends = time.monotonic() + TRICKLE_FOR_S
    while time.monotonic() < ends:
        _write(h, _chunk("more"))
        time.sleep(TRICKLE_INTERVAL_S)


def _reset_after_first(h: Handler) -> None:
    _open_stream(h)
    _write(h, GOOD_STREAM[0])
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    h.connection.close()


def _http_date(days: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(days=days), usegmt=True)


SURROGATE_ERROR = b'{"error": {"message": "boom \\udfff", "type": "api_error"}}'
INVALID_UTF8_ERROR = b'{"error": {"message": "bad \xff\xfe bytes"}}'
BAD_USAGE = {  # raw JSON of usage: its prompt_tokens, or its cache counts
    "usage_string": '{"prompt_tokens": "many", "completion_tokens": 3}',
    "usage_negative": '{"prompt_tokens": -500, "completion_tokens": -500}',
    "usage_nan": '{"prompt_tokens": NaN, "completion_tokens": 3}',
    "usage_infinity": '{"prompt_tokens": 1e999, "completion_tokens": 3}',
    "usage_list": '{"prompt_tokens": [1], "completion_tokens": 3}',
    "usage_huge": '{"prompt_tokens": ' + "1" + "0" * 300 + ', "completion_tokens": 3}',
    "usage_fraction": '{"prompt_tokens": 1.5, "completion_tokens": 3}',
    "usage_not_object": '"lots"',
    "usage_cached_over_prompt": (
        '{"prompt_tokens": 3, "completion_tokens": 3, '
        '"prompt_tokens_details": {"cached_tokens": 4}}'
    ),
    "usage_cached_negative": '{"prompt_tokens": 3, "completion_tokens": 3, "cache_read_input_tokens": -1}',
}
BAD_CHOICES = {
    "choices_string": '"yes"',
    "choices_ints": "[1]",
    "choices_null": "null",
}
HUGE_COMPLETION = _completion(content="x" * HUGE_BYTES)
BAD_IDS = {"id_object": '{"a": 1}', "id_huge": json.dumps("i" * 10_000)}
RETRY_AFTER = {
    "retry_after_absurd": "99999999999",
    "retry_after_date": _http_date(1),  # a day from when the module was imported: capped either way
    "retry_after_garbage": "soon",
    "retry_after_negative": "-5",
}


def _rate_limited(value: str) -> Callable[[Handler], None]:
    return _status(
        429,
        b'{"error": {"message": "slow down", "type": "rate_limit_error"}}',
        {"Retry-After": value},
    )


PLAIN: dict[str, Callable[[Handler], None]] = {
    "error_surrogate": _status(500, SURROGATE_ERROR),
    "error_surrogate_400": _status(400, SURROGATE_ERROR),
    "error_invalid_utf8": _status(502, INVALID_UTF8_ERROR),
    **{name: _ok(_completion(usage=usage)) for name, usage in BAD_USAGE.items()},
    **{name: _ok(_completion(choices=choices)) for name, choices in BAD_CHOICES.items()},
    "delta_string": _ok(_completion(choices='[{"index": 0, "message": "yes"}]')),
    **{name: _ok(_completion(id_=id_)) for name, id_ in BAD_IDS.items()},
    "surrogate_content": _ok(_completion().replace(b"ok from hostile", b"ok \\udfff")),
    "not_json": _ok(b'{"id": "broken", "choices": ['),
    "deep_json": _ok(b"[" * 100_000 + b"]" * 100_000),
    "not_sse": _ok(b"<html><body>gateway says hello</body></html>", "text/html"),
    "error_event": _ok(b'{"error": {"message": "overloaded, try later"}}'),
    "done_first": _ok(b"{}"),
    "huge_body": _ok(HUGE_COMPLETION),
    "huge_body_chunked": _huge_chunked,
    "long_line": _ok(HUGE_COMPLETION),
    "long_line_late": _ok(HUGE_COMPLETION),
    "trickle": _trickle_plain,
    "trickle_late": _trickle_plain,
    "endless": _trickle_plain,
    "reset_late": _ok(b'{"id": "broken", "choices": ['),
    **{name: _rate_limited(value) for name, value in RETRY_AFTER.items()},
}

STREAMING: dict[str, Callable[[Handler], None]] = {
    **{
        name: PLAIN[name]
        for name in ("error_surrogate", "error_surrogate_400", "error_invalid_utf8", *RETRY_AFTER)
    },
    **{name: _stream(_chunk(usage=usage), *GOOD_STREAM[1:]) for name, usage in BAD_USAGE.items()},
    **{
        name: _stream(_chunk(choices=choices), *GOOD_STREAM[1:])
        for name, choices in BAD_CHOICES.items()
    },
    "delta_string": _stream(_chunk(choices='[{"index": 0, "delta": "yes"}]'), *GOOD_STREAM[1:]),
    **{name: _stream(_chunk(id_=id_), *GOOD_STREAM[1:]) for name, id_ in BAD_IDS.items()},
    "surrogate_content": _stream(_chunk("ok @").replace(b"@", b"\\udfff"), *GOOD_STREAM[1:]),
    "not_json": _stream(b"data: {broken\n\n", *GOOD_STREAM),
    "deep_json": _stream(b"data: " + b"[" * 100_000 + b"]" * 100_000 + b"\n\n", *GOOD_STREAM),
    "not_sse": _stream(b"hello, this is not an event stream\n\n", *GOOD_STREAM),
    "error_event": _stream(b'data: {"error": {"message": "overloaded, try later"}}\n\n'),
    "done_first": _stream(b"data: [DONE]\n\n"),
    "huge_body": _ok(HUGE_COMPLETION),
    "huge_body_chunked": _huge_chunked,
    "long_line": _stream(HUGE_CHUNK, *GOOD_STREAM),
    "long_line_late": _stream(GOOD_STREAM[0], HUGE_CHUNK, *GOOD_STREAM[1:]),
    "trickle": _trickle_stream(),
    "trickle_late": _trickle_stream(GOOD_STREAM[0]),
    "endless": _endless,
    "reset_late": _reset_after_first,
}

MODES: tuple[str, ...] = tuple(sorted(PLAIN))
assert set(PLAIN) == set(STREAMING), set(PLAIN) ^ set(STREAMING)
