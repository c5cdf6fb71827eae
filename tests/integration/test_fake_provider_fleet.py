"""The fake provider fleet behaves like the real APIs, faults included, over real sockets."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.fakes.provider_fleet import (
    BrokenStream,
    EmptyChoices,
    FakeProvider,
    Hang,
    Malformed,
    Reset,
    Status,
)
from tests.fakes.tool_replies import JsonReply, ToolCall, ToolReply

MESSAGES = [{"role": "user", "content": "write a haiku about retries"}]


@pytest.fixture
def provider():
    with FakeProvider() as fake:
        yield fake


def _client(provider: FakeProvider, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{provider.url}/v1", api_key="sk-test-fake", max_retries=0, **kw)


def test_openai_client_gets_a_completion_and_the_request_is_recorded(
    provider: FakeProvider,
) -> None:
    reply = _client(provider).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert reply.choices[0].message.content == "ok from fake"
    assert reply.usage.total_tokens > 0
    seen = provider.requests[0]
    assert seen.body["model"] == "gpt-4o" and seen.headers["Authorization"] == "Bearer sk-test-fake"


def test_openai_client_streams(provider: FakeProvider) -> None:
    stream = _client(provider).chat.completions.create(model="m", messages=MESSAGES, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "ok from fake stream"


def test_429_carries_retry_after_then_the_next_request_succeeds(provider: FakeProvider) -> None:
    provider.script(Status(429, "slow down", retry_after=3))
    with httpx.Client() as client:
        first = client.post(f"{provider.url}/v1/chat/completions", json={"messages": MESSAGES})
        second = client.post(f"{provider.url}/v1/chat/completions", json={"messages": MESSAGES})
    assert first.status_code == 429 and first.headers["Retry-After"] == "3"
    assert first.json()["error"]["message"] == "slow down"
    assert second.status_code == 200


def test_anthropic_529_and_messages(provider: FakeProvider) -> None:
    provider.script(Status(529, "Overloaded"))
    with httpx.Client() as client:
        overloaded = client.post(
            f"{provider.url}/v1/messages", json={"model": "claude", "messages": MESSAGES}
        )
        ok = client.post(
            f"{provider.url}/v1/messages", json={"model": "claude", "messages": MESSAGES}
        )
    assert overloaded.status_code == 529
    assert overloaded.json()["error"]["type"] == "overloaded_error"
    assert ok.json()["content"][0]["text"] == "ok from fake"


def test_anthropic_stream_has_the_event_sequence(provider: FakeProvider) -> None:
    with httpx.Client() as client:
        response = client.post(
            f"{provider.url}/v1/messages",
            json={"model": "claude", "messages": MESSAGES, "stream": True},
        )
    kinds = [
        line.split(": ", 1)[1] for line in response.text.splitlines() if line.startswith("event: ")
    ]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert kinds.count("content_block_delta") == 4


def test_a_hang_times_out_the_client(provider: FakeProvider) -> None:
    provider.script(Hang(2.0))
    with pytest.raises(openai.APITimeoutError):
        _client(provider, timeout=0.3).chat.completions.create(model="m", messages=MESSAGES)


def test_a_reset_is_a_connection_error(provider: FakeProvider) -> None:
    provider.script(Reset())
    with pytest.raises(openai.APIConnectionError):
        _client(provider).chat.completions.create(model="m", messages=MESSAGES)


def test_malformed_and_empty_bodies(provider: FakeProvider) -> None:
    provider.script(Malformed(), EmptyChoices())
    with httpx.Client() as client:
        malformed = client.post(f"{provider.url}/v1/chat/completions", json={"messages": MESSAGES})
        empty = client.post(f"{provider.url}/v1/chat/completions", json={"messages": MESSAGES})
    with pytest.raises(json.JSONDecodeError):
        malformed.json()
    assert empty.json()["choices"] == []


def test_a_broken_stream_stops_without_done(provider: FakeProvider) -> None:
    provider.script(BrokenStream(chunks_before_break=2))
    chunks: list[str] = []
    with (
        httpx.Client() as client,
        pytest.raises(httpx.HTTPError),
        client.stream(
            "POST",
            f"{provider.url}/v1/chat/completions",
            json={"messages": MESSAGES, "stream": True},
        ) as response,
    ):
        for line in response.iter_lines():
            chunks.append(line)
        if not any("[DONE]" in c for c in chunks):
            raise httpx.RemoteProtocolError("stream ended without [DONE]")
    data = [c for c in chunks if c.startswith("data: ")]
    assert len(data) == 2 and not any("[DONE]" in c for c in chunks)


async def test_litellm_talks_to_the_fleet_offline(provider: FakeProvider) -> None:
    import litellm

    provider.script(Status(503, "down"))
    with pytest.raises(litellm.exceptions.ServiceUnavailableError):
        await litellm.acompletion(
            model="openai/gpt-4o",
            api_base=f"{provider.url}/v1",
            api_key="sk-test-fake",
            messages=MESSAGES,
            num_retries=0,
        )
    reply = await litellm.acompletion(
        model="openai/gpt-4o",
        api_base=f"{provider.url}/v1",
        api_key="sk-test-fake",
        messages=MESSAGES,
        num_retries=0,
    )
    assert reply.choices[0].message.content == "ok from fake"
    anthropic = await litellm.acompletion(
        model="anthropic/claude-sonnet-4-5",
        api_base=provider.url,
        api_key="sk-ant-fake",
        messages=MESSAGES,
        num_retries=0,
    )
    assert anthropic.choices[0].message.content == "ok from fake"
    assert provider.requests[-1].path.endswith("/v1/messages")


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
            },
        },
    }
]
PARALLEL = ToolReply(
    (ToolCall("read_file", {"path": "a.py"}), ToolCall("read_file", {"path": "b.py"}))
)


def test_openai_client_gets_parallel_tool_calls_plain_and_streamed(provider: FakeProvider) -> None:
    provider.script(PARALLEL, PARALLEL)
    client = _client(provider)
    reply = client.chat.completions.create(model="m", messages=MESSAGES, tools=TOOLS)
    calls = reply.choices[0].message.tool_calls
    assert reply.choices[0].finish_reason == "tool_calls"
    assert [(c.id, json.loads(c.function.arguments)) for c in calls] == [
        ("call_fake0", {"path": "a.py"}),
        ("call_fake1", {"path": "b.py"}),
    ]
    with client.chat.completions.stream(model="m", messages=MESSAGES, tools=TOOLS) as stream:
        final = stream.get_final_completion()
    assert [json.loads(c.function.arguments) for c in final.choices[0].message.tool_calls] == [
        {"path": "a.py"},
        {"path": "b.py"},
    ]


def test_a_tool_result_must_answer_a_call_as_the_real_apis_require(provider: FakeProvider) -> None:
    orphan = [*MESSAGES, {"role": "tool", "tool_call_id": "call_nobody", "content": "x"}]
    with pytest.raises(openai.BadRequestError, match="call_nobody"):
        _client(provider).chat.completions.create(model="m", messages=orphan)
    call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "read_file", "arguments": "{}"},
            }
        ],
    }
    answered = [*MESSAGES, call, {"role": "tool", "tool_call_id": "call_1", "content": "x"}]
    assert (
        _client(provider)
        .chat.completions.create(model="m", messages=answered)
        .choices[0]
        .message.content
    )


def test_anthropic_streams_tool_use_as_input_json_deltas(provider: FakeProvider) -> None:
    provider.script(PARALLEL)
    with httpx.Client() as client:
        response = client.post(
            f"{provider.url}/v1/messages",
            json={"model": "claude", "messages": MESSAGES, "stream": True},
        )
    events = [
        json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")
    ]
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert [(b["type"], b["id"]) for b in starts] == [
        ("tool_use", "toolu_fake0"),
        ("tool_use", "toolu_fake1"),
    ]
    first = "".join(
        e["delta"]["partial_json"]
        for e in events
        if e["type"] == "content_block_delta" and e["index"] == 0
    )
    assert json.loads(first) == {"path": "a.py"}
    assert (
        next(e for e in events if e["type"] == "message_delta")["delta"]["stop_reason"]
        == "tool_use"
    )


def test_anthropic_refuses_a_tool_use_without_its_result(provider: FakeProvider) -> None:
    use = {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}],
    }
    with httpx.Client() as client:
        response = client.post(
            f"{provider.url}/v1/messages",
            json={
                "model": "claude",
                "messages": [*MESSAGES, use, {"role": "user", "content": "and?"}],
            },
        )
    assert response.status_code == 400 and "toolu_1" in response.json()["error"]["message"]


def test_json_reply_is_the_forced_tool_call_on_anthropic_and_content_on_openai(
    provider: FakeProvider,
) -> None:
    provider.script(JsonReply({"ok": True}), JsonReply({"ok": True}))
    with httpx.Client() as client:
        forced = client.post(
            f"{provider.url}/v1/messages",
            json={
                "model": "claude",
                "messages": MESSAGES,
                "tool_choice": {"type": "tool", "name": "json_tool_call"},
            },
        )
    assert forced.json()["content"] == [
        {"type": "tool_use", "id": "toolu_fake0", "name": "json_tool_call", "input": {"ok": True}}
    ]
    reply = _client(provider).chat.completions.create(
        model="m", messages=MESSAGES, response_format={"type": "json_object"}
    )
    assert json.loads(reply.choices[0].message.content) == {"ok": True}
