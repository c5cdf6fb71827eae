"""The pooled-httpx fast path against the fake fleet, faults included, then through the walk."""

from __future__ import annotations

from dataclasses import replace

import pytest

from intent_router.config import load_config
from intent_router.exceptions import AllProvidersFailed, MissingKeyError, ProviderError
from intent_router.fallback import walk_chain
from intent_router.providers.openai_compat import OpenAICompatClient
from intent_router.routing.cooldown import CooldownTracker
from tests.fakes.provider_fleet import (
    BrokenStream,
    EmptyChoices,
    FakeProvider,
    Hang,
    Malformed,
    Reset,
    Status,
)

REQUEST = {"messages": [{"role": "user", "content": "hello"}]}
GPT = load_config().deployments["gpt-4o"]


@pytest.fixture
async def client():
    c = OpenAICompatClient()
    yield c
    await c.aclose()


@pytest.fixture
def fleet(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai")
    with FakeProvider("a") as a, FakeProvider("b") as b:
        yield a, b


def _at(provider: FakeProvider, name: str = "gpt-4o", **kw):
    return replace(GPT, name=name, api_base=f"{provider.url}/v1", **kw)


async def test_completion_uses_the_key_and_upstream_model(client, fleet) -> None:
    a, _ = fleet
    body = await client.complete(_at(a), REQUEST, timeout_s=2)
    assert body["choices"][0]["message"]["content"] == "ok from fake"
    assert a.requests[0].body["model"] == "gpt-4o"
    assert a.requests[0].headers["Authorization"] == "Bearer sk-test-openai"


async def test_a_missing_key_names_the_variable(client, fleet, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(MissingKeyError, match=r"\$OPENAI_API_KEY"):
        await client.complete(_at(fleet[0]), REQUEST, timeout_s=2)


@pytest.mark.parametrize(
    "fault, status, kind",
    [
        (Status(429, "slow", retry_after=7), 429, "http"),
        (Status(503, "down"), 503, "http"),
        (Reset(), None, "connection"),
        (Malformed(), None, "malformed_response"),
        (EmptyChoices(), None, "malformed_response"),
        (Hang(2.0), None, "timeout"),
    ],
)
async def test_faults_become_provider_errors(client, fleet, fault, status, kind) -> None:
    a, _ = fleet
    a.script(fault)
    with pytest.raises(ProviderError) as info:
        await client.complete(_at(a), REQUEST, timeout_s=0.5)
    assert (info.value.status, info.value.kind) == (status, kind)
    if status == 429:
        assert info.value.retry_after_s == 7


async def test_streaming_yields_sse_lines_and_a_broken_stream_raises(client, fleet) -> None:
    a, _ = fleet
    lines = [line async for line in client.stream(_at(a), REQUEST, timeout_s=2)]
    assert lines[-1] == b"data: [DONE]" and len(lines) == 6
    a.script(BrokenStream(1))
    got: list[bytes] = []
    with pytest.raises(ProviderError):
        async for line in client.stream(_at(a), REQUEST, timeout_s=2):
            got.append(line)
        if got[-1] != b"data: [DONE]":
            raise ProviderError("stream ended before [DONE]", kind="connection")
    assert len(got) == 1


async def test_a_503_falls_back_to_the_second_fake_over_real_sockets(client, fleet) -> None:
    a, b = fleet
    a.script(Status(503, "down"))
    deployments = {"first": _at(a, "first"), "second": _at(b, "second")}
    result = await walk_chain(
        ("first", "second"),
        deployments,
        lambda d, t: client.complete(d, REQUEST, t),
        CooldownTracker(3, 30),
        deadline_s=5,
    )
    assert result.deployment == "second"
    assert len(a.requests) == 1 and len(b.requests) == 1


async def test_all_fakes_down_lists_the_attempts_within_the_deadline(client, fleet) -> None:
    a, b = fleet
    a.script(Hang(3.0))
    b.script(Hang(3.0))
    deployments = {"first": _at(a, "first"), "second": _at(b, "second")}
    with pytest.raises(AllProvidersFailed) as info:
        await walk_chain(
            ("first", "second"),
            deployments,
            lambda d, t: client.complete(d, REQUEST, t),
            CooldownTracker(3, 30),
            deadline_s=0.8,
        )
    assert next(a.error for a in info.value.attempts if a.outcome == "failed") == "timeout"
