"""The litellm path against a hostile upstream: litellm parses (and buffers) what the fast path
reads itself, so the limits and the checks are kept after it, in the dispatcher."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from intent_router.config import UpstreamLimits, load_config
from intent_router.exceptions import AllProvidersFailed, FatalProviderError, ProviderError
from intent_router.fallback import walk_chain
from intent_router.providers.dispatch import ProviderClients
from intent_router.routing.cooldown import CooldownTracker
from tests.fakes.provider_fleet import FakeProvider

LIMITS = UpstreamLimits(
    max_body_bytes=65536, max_sse_line_bytes=65536, stream_idle_s=0.5, stream_total_s=1.0
)
# For the idle bound alone: a total far away, so a busy machine cannot reach it first.
IDLE_ONLY = replace(LIMITS, stream_total_s=30.0)
# An OpenAI-compatible upstream through litellm (api_style: litellm), as a LiteLLM user may set it.
GPT = replace(load_config().deployments["gpt-4o"], api_style="litellm", timeout_s=3.0)


@pytest.fixture(scope="module")
def hostile() -> Iterator[FakeProvider]:
    with FakeProvider("hostile", hostile=True) as fake:
        yield fake


@pytest.fixture
async def clients(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    c = ProviderClients(LIMITS)
    yield c
    await c.aclose()


def _request(mode: str) -> dict:
    return {"messages": [{"role": "user", "content": f"[hostile:{mode}] hi"}]}


async def _stream(clients: ProviderClients, fake: FakeProvider, mode: str) -> list[bytes]:
    deployment = replace(GPT, api_base=f"{fake.url}/v1")
    return [line async for line in clients.stream(deployment, _request(mode), 3.0)]


@pytest.mark.parametrize("mode", ["huge_body", "huge_body_chunked"])
async def test_a_huge_answer_read_whole_by_litellm_is_still_malformed(
    clients, hostile, mode: str
) -> None:
    with pytest.raises(ProviderError) as info:
        await clients.complete(replace(GPT, api_base=f"{hostile.url}/v1"), _request(mode), 3.0)
    assert info.value.kind == "malformed_response" and "over the limit of 65536" in str(info.value)


@pytest.mark.parametrize(
    ("mode", "problem", "limits"),
    [
        ("trickle", "no complete stream line for 0.5 s", IDLE_ONLY),
        ("trickle_late", "no complete stream line for 0.5 s", IDLE_ONLY),
        ("endless", "lasted over 1 s", LIMITS),
        ("long_line", "longer than 65536 bytes", LIMITS),
    ],
)
async def test_a_litellm_stream_is_held_to_the_same_limits(
    hostile, monkeypatch: pytest.MonkeyPatch, mode: str, problem: str, limits: UpstreamLimits
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    clients = ProviderClients(limits)
    try:
        with pytest.raises(ProviderError, match=problem):
            await _stream(clients, hostile, mode)
    finally:
        await clients.aclose()


@pytest.mark.parametrize(
    ("mode", "kind"),
    [("error_surrogate", AllProvidersFailed), ("error_surrogate_400", FatalProviderError)],
)
async def test_a_lone_surrogate_in_litellms_message_is_replaced(
    clients, hostile, mode: str, kind: type
) -> None:
    deployment = replace(GPT, api_base=f"{hostile.url}/v1")
    with pytest.raises(kind) as info:
        await walk_chain(
            [GPT.name],
            {GPT.name: deployment},
            lambda d, timeout: clients.complete(d, _request(mode), timeout),
            CooldownTracker(100, 30),
            deadline_s=5,
        )
    text = str(info.value) if kind is FatalProviderError else info.value.attempts[0].error
    assert "boom \ufffd" in text
    text.encode("utf-8")  # sendable and storable
