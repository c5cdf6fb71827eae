"""The litellm path: every litellm exception class is mapped; Anthropic faults from the fleet."""

from __future__ import annotations

import importlib.util
import inspect
from dataclasses import replace

import httpx
import pytest

from intent_router.config import load_config
from intent_router.exceptions import ProviderClientBug, ProviderError
from intent_router.fallback import walk_chain
from intent_router.providers.litellm_client import (
    LitellmClient,
    litellm,
    map_call_failure,
    map_litellm_error,
)
from intent_router.routing.cooldown import CooldownTracker
from intent_router.routing.retry_rules import Verdict, failure_from_error, verdict
from tests.fakes.provider_fleet import FakeProvider, Status
from tests.fakes.tool_replies import ToolCall, ToolReply

CLAUDE = load_config().deployments["claude-sonnet-4"]
REQUEST = {"messages": [{"role": "user", "content": "review this design"}]}


def _instances():
    response = httpx.Response(503, request=httpx.Request("POST", "http://127.0.0.1/x"))
    for name, cls in inspect.getmembers(litellm.exceptions, inspect.isclass):
        if issubclass(cls, Exception) and cls.__module__.startswith("litellm"):
            for kwargs in (
                {"message": "m", "llm_provider": "p", "model": "x", "response": response},
                {"message": "m", "model": "x", "llm_provider": "p"},
                {"message": "m"},
                {},
            ):
                try:
                    yield name, cls(**kwargs)
                    break
                except Exception:
                    continue


def test_every_litellm_exception_class_maps_to_a_provider_error() -> None:
    seen = 0
    for name, exc in _instances():
        mapped = map_litellm_error(exc)
        assert isinstance(mapped, ProviderError), name
        assert mapped.status is None or 100 <= mapped.status <= 599, name
        seen += 1
    assert seen >= 20


def test_mapped_statuses_drive_the_retry_rules() -> None:
    response = httpx.Response(
        429, headers={"retry-after": "4"}, request=httpx.Request("POST", "http://x")
    )
    rate = litellm.exceptions.RateLimitError("slow", "anthropic", "claude", response=response)
    failure = failure_from_error(map_litellm_error(rate))
    assert failure.retry_after_s == 4 and verdict(failure, CLAUDE) is Verdict.NEXT_DEPLOYMENT
    auth = litellm.exceptions.AuthenticationError("bad key", "anthropic", "claude")
    assert verdict(failure_from_error(map_litellm_error(auth)), CLAUDE) is Verdict.RETURN_TO_CALLER
    window = litellm.exceptions.ContextWindowExceededError("too long", "claude", "anthropic")
    assert (
        verdict(failure_from_error(map_litellm_error(window)), CLAUDE)
        is Verdict.NEXT_WITH_LARGER_CONTEXT
    )


async def test_anthropic_529_through_litellm_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    with FakeProvider("anthropic-a") as a, FakeProvider("anthropic-b") as b:
        a.script(Status(529, "Overloaded"))
        deployments = {
            "first": replace(CLAUDE, name="first", api_base=a.url),
            "second": replace(CLAUDE, name="second", api_base=b.url),
        }
        client = LitellmClient()
        result = await walk_chain(
            ("first", "second"),
            deployments,
            lambda d, t: client.complete(d, REQUEST, t),
            CooldownTracker(3, 30),
            deadline_s=10,
        )
    assert result.deployment == "second"
    assert result.attempts[0].status == 529
    assert result.value["choices"][0]["message"]["content"] == "ok from fake"
    assert b.requests[0].headers.get("x-api-key") == "sk-ant-test"


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
        },
    }
]


@pytest.mark.skipif(
    importlib.util.find_spec("mcp") is not None, reason="needs an environment without mcp"
)
async def test_litellms_own_import_failure_is_our_bug_not_the_providers() -> None:
    """litellm 1.106 imports the optional mcp package for any request with tools and wraps the
    ImportError as an APIConnectionError: retried, it would cool every Anthropic deployment down."""
    with FakeProvider("anthropic") as fake:
        with pytest.raises(Exception) as caught:
            await litellm.acompletion(
                model=CLAUDE.model,
                api_base=fake.url,
                api_key="k",
                num_retries=0,
                messages=REQUEST["messages"],
                tools=TOOLS,
            )
        assert fake.requests == []  # it failed before any provider was asked
    mapped = map_call_failure(caught.value, CLAUDE)
    assert isinstance(mapped, ProviderClientBug) and not isinstance(mapped, ProviderError)
    assert "ModuleNotFoundError (module 'mcp')" in str(mapped)


async def test_tools_go_through_the_litellm_client_and_unknown_fields_stay_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    with FakeProvider("anthropic") as fake:
        fake.script(ToolReply((ToolCall("read_file", {"path": "a.py"}),)))
        request = {
            **REQUEST,
            "tools": TOOLS,
            "api_base": "http://attacker.invalid",
            "mock_response": "forged",
        }
        answer = await LitellmClient().complete(replace(CLAUDE, api_base=fake.url), request, 5)
    call = answer["choices"][0]["message"]["tool_calls"][0]
    assert call["function"] == {"name": "read_file", "arguments": '{"path": "a.py"}'}
    assert fake.requests[0].body["tools"][0]["name"] == "read_file"


@pytest.mark.parametrize("api_base", ["http://127.0.0.1:9", "http://no-such-host.invalid:1234"])
async def test_a_refused_connection_or_unknown_host_is_unreachable(
    api_base: str, monkeypatch
) -> None:
    """litellm reports both as a 500; the router tells them apart: nothing reached an upstream."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "an-test")
    with pytest.raises(ProviderError) as info:
        await LitellmClient().complete(replace(CLAUDE, api_base=api_base), REQUEST, timeout_s=3)
    assert info.value.kind == "unreachable"
    assert str(info.value).startswith(f"cannot connect to {api_base} (")
