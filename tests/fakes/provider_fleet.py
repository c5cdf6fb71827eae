"""A fake model-provider fleet: real HTTP servers on loopback with scripted faults.

Each FakeProvider speaks OpenAI's chat-completions API (``/v1/chat/completions``, streaming
too) and Anthropic's messages API (``/v1/messages``). Tests script what the next requests
get: a status with a body and Retry-After, a hang, a connection reset, a malformed body,
empty choices, or a stream broken after some chunks. Unscripted requests succeed, unless
``chaos`` is on: then each gets a fault drawn at random (seeded) with a given probability.
Every request is recorded with its arrival time and the fault it got. Tool calls and structured
output are scripted with ``ToolReply`` and ``JsonReply`` (tests/fakes/tool_replies.py). A fake started with
``hostile=True`` also obeys the hostile modes a request selects (``hostile_faults``).
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes import hostile_faults, tool_replies
from tests.fakes.tool_replies import JsonReply, ToolReply


@dataclass(frozen=True)
class Reply:
    """A normal answer (the default)."""

    text: str = "ok from fake"
    cached_tokens: int = 0
    """Prompt tokens the answer's usage says were read from the prompt cache (OpenAI's
    ``prompt_tokens_details.cached_tokens``, Anthropic's ``cache_read_input_tokens``), on top of
    the words of the request."""
    cache_write_tokens: int = 0
    """Prompt tokens written to the cache (Anthropic's ``cache_creation_input_tokens``)."""


@dataclass(frozen=True)
class Status:
    """An HTTP error with a JSON (or raw) body and an optional Retry-After header."""

    code: int
    message: str = "scripted failure"
    retry_after: float | None = None
    raw_body: str | None = None


@dataclass(frozen=True)
class Echo:
    """An HTTP error whose message echoes the credentials and the messages the request carried,
    as some providers do ("Incorrect API key provided: sk-..."): a leak test's worst upstream."""

    code: int = 401


@dataclass(frozen=True)
class Hang:
    """Accept the request, then send nothing for ``seconds``."""

    seconds: float = 30.0


@dataclass(frozen=True)
class Reset:
    """Close the connection with a TCP RST before answering."""


@dataclass(frozen=True)
class Malformed:
    """A 200 whose body is not JSON."""


@dataclass(frozen=True)
class EmptyChoices:
    """A 200 whose ``choices`` list is empty."""


@dataclass(frozen=True)
class BrokenStream:
    """Stream ``chunks_before_break`` chunks, then drop the connection without [DONE]."""

    chunks_before_break: int = 2
    tool_call: bool = False
    """The chunks stream a tool call's arguments (OpenAI-style only) rather than text."""
    stall_s: float = 0.0
    """How long the stream stays open, silent, before the connection drops."""


Fault = (
    Reply
    | ToolReply
    | JsonReply
    | Status
    | Echo
    | Hang
    | Reset
    | Malformed
    | EmptyChoices
    | BrokenStream
)


@dataclass
class SeenRequest:
    path: str
    headers: dict[str, str]
    body: Any
    arrived: float = 0.0
    """``time.monotonic()`` when the request line was read (one clock for all processes)."""
    fault: Fault = field(default_factory=Reply)
    """What the request was answered with (scripted, drawn by ``chaos``, or Reply)."""
    hostile: str | None = None
    """The hostile mode it was answered in (a hostile fake only), which overrides ``fault``."""


@dataclass
class _Chaos:
    faults: tuple[Fault, ...]
    weights: tuple[float, ...]
    probability: float
    rng: random.Random

    def draw(self) -> Fault:
        if self.rng.random() >= self.probability:
            return Reply()
        return self.rng.choices(self.faults, self.weights)[0]


@dataclass
class _State:
    script: deque[Fault] = field(default_factory=deque)
    seen: list[SeenRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    chaos: _Chaos | None = None

    def next_fault(self) -> Fault:
        """The next scripted fault, else a chaos draw, else Reply (call with the lock held)."""
        if self.script:
            return self.script.popleft()
        return self.chaos.draw() if self.chaos is not None else Reply()


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog is 5: a burst of connections from a pooled client
    # under load overflows it, and the dropped SYNs come back only after a 1 s retransmit.
    request_queue_size = 128


class FakeProvider:
    """One fake provider on 127.0.0.1 with an ephemeral port; use as a context manager."""

    def __init__(self, name: str = "fake", hostile: bool = False, port: int = 0) -> None:
        self.name = name
        self._state = _State()
        handler = type(
            "Handler", (_Handler,), {"state": self._state, "provider": name, "hostile": hostile}
        )
        self._server = _Server(("127.0.0.1", port), handler)  # port 0: any free one
        self._server.daemon_threads = True
        # shutdown() waits for serve_forever's next poll: 0.5 s by default, per fake, per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> FakeProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, *faults: Fault) -> None:
        """Queue what the next requests get, in order."""
        with self._state.lock:
            self._state.script.extend(faults)

    def chaos(
        self, faults: Sequence[tuple[Fault, float]], probability: float, seed: int = 0
    ) -> None:
        """From now on, when the script is empty, answer each request with a fault with
        ``probability`` (picked among ``faults`` by weight), else normally.

        One seeded generator, drawn under the lock in arrival order: the n-th unscripted
        request gets the same fault on every run with the same seed."""
        if not faults or not 0 <= probability <= 1:
            raise ValueError("chaos needs faults with weights and a probability in [0, 1]")
        with self._state.lock:
            self._state.chaos = _Chaos(
                tuple(f for f, _ in faults),
                tuple(w for _, w in faults),
                probability,
                random.Random(seed),
            )

    def reset(self) -> None:
        """Forget the script, ``chaos`` and the recorded requests: a fake as new, for the next
        test sharing it."""
        with self._state.lock:
            self._state.script.clear()
            self._state.seen.clear()
            self._state.chaos = None

    def calm(self) -> None:
        """Stop ``chaos``: unscripted requests succeed again."""
        with self._state.lock:
            self._state.chaos = None

    @property
    def requests(self) -> list[SeenRequest]:
        with self._state.lock:
            return list(self._state.seen)


class _Handler(BaseHTTPRequestHandler):
    state: _State
    provider: str
    hostile: bool = False
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
        else:
            self._json(404, {"error": {"message": "not found", "type": "not_found"}})

    def do_POST(self) -> None:
        arrived = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        mode = hostile_faults.mode_of(body, self.headers) if self.hostile else None
        with self.state.lock:
            fault = self.state.next_fault() if mode is None else Reply()
            self.state.seen.append(
                SeenRequest(self.path, dict(self.headers), body, arrived, fault, mode)
            )
        if mode is not None:
            hostile_faults.answer(self, mode, body)
            return
        anthropic = self.path.rstrip("/").endswith("/messages")
        if not self.path.rstrip("/").endswith(("/chat/completions", "/messages")):
            self._json(404, {"error": {"message": "not found", "type": "not_found"}})
            return
        self._answer(fault, body if isinstance(body, dict) else {}, anthropic)

    def _answer(self, fault: Fault, body: dict[str, Any], anthropic: bool) -> None:
        if isinstance(fault, Hang):
            time.sleep(fault.seconds)
            self.close_connection = True
            return
        if isinstance(fault, Reset):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if isinstance(fault, Echo):
            credentials = [self.headers.get(h) for h in ("Authorization", "x-api-key", "api-key")]
            message = (
                f"Incorrect API key provided: {' '.join(c for c in credentials if c)}; "
                f"request messages: {json.dumps(body.get('messages'))}"
            )
            self._status(Status(fault.code, message), anthropic)
        elif isinstance(fault, Status):
            self._status(fault, anthropic)
        elif isinstance(fault, Malformed):
            self._raw(200, b'{"id": "broken", "choices": [', "application/json")
        elif isinstance(fault, EmptyChoices):
            self._json(
                200,
                {
                    "id": "empty",
                    "object": "chat.completion",
                    "choices": [],
                    "model": body.get("model"),
                },
            )
        elif (problem := tool_replies.conversation_problem(body, anthropic)) is not None:
            self._status(Status(400, problem), anthropic)
        elif isinstance(fault, JsonReply) and (
            as_tool := tool_replies.as_tool_reply(fault, body, anthropic)
        ):
            self._answer(as_tool, body, anthropic)
        elif isinstance(fault, ToolReply):
            self._tools(fault, body, anthropic)
        elif body.get("stream"):
            self._stream(body, fault, anthropic)
        else:
            text = (
                fault.text
                if isinstance(fault, Reply)
                else json.dumps(fault.value)
                if isinstance(fault, JsonReply)
                else "ok from fake"
            )
            cache = _cache(fault)
            self._json(
                200,
                _anthropic_message(body, text, cache)
                if anthropic
                else _openai_completion(body, text, cache),
            )

    def _status(self, fault: Status, anthropic: bool) -> None:
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        if fault.raw_body is not None:
            self._raw(fault.code, fault.raw_body.encode(), "text/plain", headers)
            return
        kind = "overloaded_error" if fault.code == 529 else "api_error"
        payload = (
            {"type": "error", "error": {"type": kind, "message": fault.message}}
            if anthropic
            else {"error": {"message": fault.message, "type": kind, "code": str(fault.code)}}
        )
        self._json(fault.code, payload, headers)

    def _tools(self, reply: ToolReply, body: dict[str, Any], anthropic: bool) -> None:
        if not body.get("stream"):
            self._json(
                200,
                tool_replies.anthropic_tool_message(body, reply)
                if anthropic
                else tool_replies.openai_tool_completion(body, reply),
            )
            return
        self._stream_head()
        events = (
            tool_replies.anthropic_tool_events(body, reply)
            if anthropic
            else tool_replies.openai_tool_chunks(body, reply) + ["data: [DONE]\n\n"]
        )
        for event in events:
            self.wfile.write(event.encode())
            self.wfile.flush()
        self.close_connection = True

    def _stream_head(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()

    def _stream(self, body: dict[str, Any], fault: Fault, anthropic: bool) -> None:
        self._stream_head()
        words = (
            tool_replies.split_text(json.dumps(fault.value))
            if isinstance(fault, JsonReply)
            else ["ok", " from", " fake", " stream"]
        )
        limit = fault.chunks_before_break if isinstance(fault, BrokenStream) else len(words)
        cache = _cache(fault)
        events = (
            _anthropic_events(body, words, cache)
            if anthropic
            else _openai_chunks(body, words, cache)
        )
        if isinstance(fault, BrokenStream) and fault.tool_call and not anthropic:
            events = _openai_tool_chunks(body, words)
        for index, event in enumerate(events):
            if index >= limit + (1 if anthropic else 0) and isinstance(fault, BrokenStream):
                self.wfile.flush()
                time.sleep(fault.stall_s)
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:  # the router left first (it closed its side while we stalled)
                    pass
                self.close_connection = True
                return
            self.wfile.write(event.encode())
            self.wfile.flush()
        if not anthropic:
            self.wfile.write(b"data: [DONE]\n\n")
        self.close_connection = True

    def _json(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._raw(code, json.dumps(payload).encode(), "application/json", headers)

    def _raw(
        self, code: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


def _usage(body: dict[str, Any], text: str) -> tuple[int, int]:
    prompt = sum(
        len(str(m.get("content", "")).split())
        for m in body.get("messages", [])
        if isinstance(m, dict)
    )
    return max(prompt, 1), len(text.split())


def _cache(fault: Fault) -> tuple[int, int]:
    return (fault.cached_tokens, fault.cache_write_tokens) if isinstance(fault, Reply) else (0, 0)


def _openai_usage(
    prompt_tokens: int, completion_tokens: int, cache: tuple[int, int]
) -> dict[str, Any]:
    """OpenAI's usage: cached tokens are counted in ``prompt_tokens`` too."""
    prompt_tokens += cache[0] + cache[1]
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cache[0]:
        usage["prompt_tokens_details"] = {"cached_tokens": cache[0]}
    return usage


def _openai_completion(
    body: dict[str, Any], text: str, cache: tuple[int, int] = (0, 0)
) -> dict[str, Any]:
    prompt_tokens, completion_tokens = _usage(body, text)
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake-model"),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": _openai_usage(prompt_tokens, completion_tokens, cache),
    }


def _openai_chunks(
    body: dict[str, Any], words: list[str], cache: tuple[int, int] = (0, 0)
) -> list[str]:
    base = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", "fake-model"),
    }
    chunks = [
        {
            **base,
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": w} if i == 0 else {"content": w},
                    "finish_reason": None,
                }
            ],
        }
        for i, w in enumerate(words)
    ]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if (body.get("stream_options") or {}).get("include_usage"):
        prompt_tokens, completion_tokens = _usage(body, "".join(words))
        chunks.append(
            {**base, "choices": [], "usage": _openai_usage(prompt_tokens, completion_tokens, cache)}
        )
    return [f"data: {json.dumps(c)}\n\n" for c in chunks]


def _openai_tool_chunks(body: dict[str, Any], words: list[str]) -> list[str]:
    """A stream of one tool call whose arguments come a word per chunk."""
    base = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", "fake-model"),
    }
    chunks = [
        {
            **base,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": None,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_fake",
                                "type": "function",
                                "function": {"name": "lookup", "arguments": w},
                            }
                            if i == 0
                            else {"index": 0, "function": {"arguments": w}}
                        ]
                    },
                }
            ],
        }
        for i, w in enumerate(words)
    ]
    return [f"data: {json.dumps(c)}\n\n" for c in chunks]


def _anthropic_message(
    body: dict[str, Any], text: str, cache: tuple[int, int] = (0, 0)
) -> dict[str, Any]:
    """Anthropic's usage: ``input_tokens`` are the uncached ones, the cache's counted apart."""
    prompt_tokens, completion_tokens = _usage(body, text)
    usage: dict[str, Any] = {"input_tokens": prompt_tokens, "output_tokens": completion_tokens}
    if cache != (0, 0):
        usage.update(cache_read_input_tokens=cache[0], cache_creation_input_tokens=cache[1])
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "fake"),
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }


def _anthropic_events(
    body: dict[str, Any], words: list[str], cache: tuple[int, int] = (0, 0)
) -> list[str]:
    def event(kind: str, data: dict[str, Any]) -> str:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"

    message = _anthropic_message(body, "", cache)
    message["content"] = []
    events = [
        event("message_start", {"message": message}),
        event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    ]
    events += [
        event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": w}})
        for w in words
    ]
    events += [
        event("content_block_stop", {"index": 0}),
        event(
            "message_delta",
            {
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(words)},
            },
        ),
        event("message_stop", {}),
    ]
    return events
