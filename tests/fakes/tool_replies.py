"""Scripted tool calls and structured output for the fake fleet, in OpenAI's and Anthropic's formats.

``ToolReply`` answers with one or more tool calls (several: a parallel call), ``JsonReply`` with
a JSON document (structured output). Both stream as the real APIs do: OpenAI's ``tool_calls``
deltas with their ``index``, Anthropic's ``tool_use`` blocks with ``input_json_delta`` parts.
``conversation_problem`` checks a request's tool results against the calls they answer, and the
fake refuses a broken conversation with a 400 as the real APIs do.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

#: Anthropic-style JSON mode: litellm asks for structured output as a call to this tool.
JSON_TOOL = "json_tool_call"


@dataclass(frozen=True)
class ToolCall:
    """One call of the tool ``name`` with ``arguments``; ``id`` defaults to ``call_<n>`` (OpenAI)
    or ``toolu_<n>`` (Anthropic)."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = None

    def call_id(self, index: int, anthropic: bool) -> str:
        return self.id or (f"toolu_fake{index}" if anthropic else f"call_fake{index}")


@dataclass(frozen=True)
class ToolReply:
    """An answer that calls ``calls`` (in parallel when several), after an optional ``text``."""

    calls: tuple[ToolCall, ...]
    text: str = ""


@dataclass(frozen=True)
class JsonReply:
    """Structured output: the answer's content is ``value`` as JSON (Anthropic: the call of the
    tool the request forces, when it forces one, as litellm's JSON mode expects)."""

    value: Any


def forced_tool(body: dict[str, Any]) -> str | None:
    """The tool an Anthropic request forces (``tool_choice: {"type": "tool", "name": ...}``)."""
    choice = body.get("tool_choice")
    return (
        str(choice["name"]) if isinstance(choice, dict) and choice.get("type") == "tool" else None
    )


def as_tool_reply(reply: JsonReply, body: dict[str, Any], anthropic: bool) -> ToolReply | None:
    """A JsonReply an Anthropic request wants as a tool call (JSON mode), else None."""
    name = forced_tool(body) if anthropic else None
    return ToolReply((ToolCall(name, reply.value),)) if name else None


def split_text(text: str, parts: int = 3) -> list[str]:
    """``text`` in about ``parts`` pieces, as a stream delivers it."""
    size = max(1, -(-len(text) // parts))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _usage(body: dict[str, Any], reply: ToolReply) -> tuple[int, int]:
    prompt = sum(
        len(json.dumps(m).split()) for m in body.get("messages", []) if isinstance(m, dict)
    )
    return max(prompt, 1), max(1, sum(len(json.dumps(c.arguments).split()) for c in reply.calls))


def openai_tool_completion(body: dict[str, Any], reply: ToolReply) -> dict[str, Any]:
    prompt_tokens, completion_tokens = _usage(body, reply)
    calls = [
        {
            "id": c.call_id(i, False),
            "type": "function",
            "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
        }
        for i, c in enumerate(reply.calls)
    ]
    return {
        "id": "chatcmpl-fake-tools",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake-model"),
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": reply.text or None,
                    "tool_calls": calls,
                },
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def openai_tool_chunks(body: dict[str, Any], reply: ToolReply) -> list[str]:
    """SSE events: the text, then per call a header delta (id, name) and argument fragments."""
    base = {
        "id": "chatcmpl-fake-tools",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", "fake-model"),
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    chunks = [chunk({"role": "assistant", "content": reply.text or None})]
    for i, call in enumerate(reply.calls):
        chunks.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": i,
                            "id": call.call_id(i, False),
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
            )
        )
        chunks += [
            chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]})
            for part in split_text(json.dumps(call.arguments))
        ]
    chunks.append(chunk({}, "tool_calls"))
    if (body.get("stream_options") or {}).get("include_usage"):
        prompt_tokens, completion_tokens = _usage(body, reply)
        chunks.append(
            {
                **base,
                "choices": [],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )
    return [f"data: {json.dumps(c)}\n\n" for c in chunks]


def anthropic_tool_message(body: dict[str, Any], reply: ToolReply) -> dict[str, Any]:
    prompt_tokens, completion_tokens = _usage(body, reply)
    content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
    content += [
        {"type": "tool_use", "id": c.call_id(i, True), "name": c.name, "input": c.arguments}
        for i, c in enumerate(reply.calls)
    ]
    return {
        "id": "msg_fake_tools",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "fake"),
        "content": content,
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": prompt_tokens, "output_tokens": completion_tokens},
    }


def anthropic_tool_events(body: dict[str, Any], reply: ToolReply) -> list[str]:
    """SSE events: message_start, a text block if any, one tool_use block per call with its
    input as ``input_json_delta`` parts, message_delta (stop_reason tool_use), message_stop."""

    def event(kind: str, data: dict[str, Any]) -> str:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"

    message = {**anthropic_tool_message(body, reply), "content": [], "stop_reason": None}
    events = [event("message_start", {"message": message})]
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    if reply.text:
        blocks.append(({"type": "text", "text": ""}, [{"type": "text_delta", "text": reply.text}]))
    for i, call in enumerate(reply.calls):
        header = {"type": "tool_use", "id": call.call_id(i, True), "name": call.name, "input": {}}
        parts = [
            {"type": "input_json_delta", "partial_json": p}
            for p in split_text(json.dumps(call.arguments))
        ]
        blocks.append((header, parts))
    for index, (header, deltas) in enumerate(blocks):
        events.append(event("content_block_start", {"index": index, "content_block": header}))
        events += [event("content_block_delta", {"index": index, "delta": d}) for d in deltas]
        events.append(event("content_block_stop", {"index": index}))
    events += [
        event(
            "message_delta",
            {
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": _usage(body, reply)[1]},
            },
        ),
        event("message_stop", {}),
    ]
    return events


def conversation_problem(body: dict[str, Any], anthropic: bool) -> str | None:
    """What the real API would refuse in the request's tool results (None: nothing)."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    return _anthropic_problem(messages) if anthropic else _openai_problem(messages)


def _openai_problem(messages: list[dict[str, Any]]) -> str | None:
    open_calls: set[str] = set()
    for message in messages:
        if message.get("role") == "assistant":
            open_calls = {
                str(c.get("id")) for c in message.get("tool_calls") or [] if isinstance(c, dict)
            }
        elif message.get("role") == "tool":
            if message.get("tool_call_id") not in open_calls:
                return (
                    f"messages with role 'tool' must be a response to a preceding message with "
                    f"'tool_calls' (tool_call_id {message.get('tool_call_id')!r})"
                )
            open_calls.discard(message["tool_call_id"])
        elif open_calls:
            return f"an assistant message with 'tool_calls' must be followed by tool messages ({sorted(open_calls)})"
    return None


def _blocks(message: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    content = message.get("content")
    return (
        [b for b in content if isinstance(b, dict) and b.get("type") == kind]
        if isinstance(content, list)
        else []
    )


def _anthropic_problem(messages: list[dict[str, Any]]) -> str | None:
    for i, message in enumerate(messages):
        results = {str(b.get("tool_use_id")) for b in _blocks(message, "tool_result")}
        uses = {str(b.get("id")) for b in _blocks(messages[i - 1], "tool_use")} if i else set()
        if results - uses:
            return (
                f"unexpected `tool_use_id` found in `tool_result` blocks: {sorted(results - uses)}"
            )
        following = (
            {str(b.get("tool_use_id")) for b in _blocks(messages[i + 1], "tool_result")}
            if i + 1 < len(messages)
            else None
        )
        mine = {str(b.get("id")) for b in _blocks(message, "tool_use")}
        if following is not None and mine - following:
            return f"`tool_use` ids were found without `tool_result` blocks immediately after: {sorted(mine - following)}"
    return None
