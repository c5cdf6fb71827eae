"""Prompt-cache-aware cost through the real service and the fake fleet: cached input read from
the OpenAI fast path and from Anthropic through litellm, plain and streaming, priced at the
cache prices; Anthropic ``cache_control`` blocks reach the provider unchanged on both paths."""

from __future__ import annotations

import json

import httpx
import pytest
import yaml

from intent_router.config import DEFAULT_CONFIG
from intent_router.decisions import DecisionStore
from tests import loopback
from tests.fakes.provider_fleet import FakeProvider, Reply
from tests.integration.inprocess import provide_keys, serving_in_process
from tests.integration.service_process import wait_for

KEYS = {"CLOUDFLARE_API_KEY": "cf-k", "ANTHROPIC_API_KEY": "an-k", "OPENAI_API_KEY": "oa-k"}
CACHED_PROMPT = [
    {
        "role": "system",
        "content": [
            {
                "type": "text",
                "cache_control": {"type": "ephemeral"},
                "text": "You are a careful reviewer of a large codebase.",
            }
        ],
    },
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "review the diff", "cache_control": {"type": "ephemeral"}}
        ],
    },
]


@pytest.fixture(autouse=True)
def _provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    provide_keys(monkeypatch, KEYS)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    with FakeProvider("kimi") as kimi, FakeProvider("claude") as claude:
        raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
        deployments = raw["deployments"]
        deployments["kimi-k2.6"].update(
            api_base=f"{kimi.url}/v1",
            api_style="openai",
            timeout_s=3,
            output_cost_per_mtok=2.0,
            cache_read_cost_per_mtok=0.05,
            fallbacks=[],
        )
        deployments["claude-sonnet-4"].update(
            api_base=claude.url, timeout_s=5, fallbacks=[]
        )  # litellm
        deployments["claude-fast"] = {
            **deployments["claude-sonnet-4"],
            "api_style": "openai",  # Anthropic's
            "api_base": f"{claude.url}/v1",
        }  # OpenAI-compatible endpoint
        raw["tracking"]["enabled"] = False
        directory = tmp_path_factory.mktemp("cfg")
        path = directory / "router.yaml"
        path.write_text(yaml.safe_dump(raw))
        database_url = f"sqlite:///{directory / 'decisions.db'}"
        with serving_in_process(
            path, env={**KEYS, "INTENT_ROUTER_DATABASE_URL": database_url}, ready=True
        ) as url:
            yield {
                "url": url,
                "kimi": kimi,
                "claude": claude,
                "decisions": DecisionStore(database_url),
            }


def _post(url: str, model: str, **extra: object) -> httpx.Response:
    return loopback.post(
        f"{url}/v1/chat/completions",
        timeout=30,
        json={"model": model, "messages": CACHED_PROMPT, **extra},
    )


def _stream(url: str, model: str, **extra: object) -> dict:
    """The usage chunk of a streamed answer (the client asked for one), and its request id."""
    with loopback.stream(
        "POST",
        f"{url}/v1/chat/completions",
        timeout=30,
        json={
            "model": model,
            "messages": CACHED_PROMPT,
            "stream": True,
            "stream_options": {"include_usage": True},
            **extra,
        },
    ) as response:
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        events = [line[5:].strip() for line in response.iter_lines() if line.startswith("data:")]
    assert events[-1] == "[DONE]"
    usages = [json.loads(e)["usage"] for e in events[:-1] if json.loads(e).get("usage")]
    return {**usages[-1], "request_id": request_id}


def _decision(fleet: dict, request_id: str) -> dict:
    """The decision-log row of a request (written off the request path: waited for)."""
    store = fleet["decisions"]
    wait_for(lambda: store.get(request_id) is not None, timeout_s=15)
    return store.get(request_id)


def _metric(url: str, deployment: str, cached: str) -> float:
    prefix = f'intent_router_input_tokens_total{{cached="{cached}",deployment="{deployment}"}}'
    lines = [
        line
        for line in loopback.get(f"{url}/metrics", timeout=10).text.splitlines()
        if line.startswith(prefix)
    ]
    return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0


def test_openai_cached_tokens_are_priced_at_the_configured_cache_price(fleet) -> None:
    fleet["kimi"].script(Reply(cached_tokens=800))
    before = _metric(fleet["url"], "kimi-k2.6", "true")
    response = _post(fleet["url"], "kimi-k2.6")
    usage = response.json()["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 800
    assert response.headers["x-intent-router-cached-tokens"] == "800"
    uncached = usage["prompt_tokens"] - 800
    expected = (uncached * 0.50 + 800 * 0.05 + usage["completion_tokens"] * 2.0) / 1e6
    assert float(response.headers["x-intent-router-cost-usd"]) == pytest.approx(expected, abs=1e-8)
    assert _metric(fleet["url"], "kimi-k2.6", "true") == before + 800
    sent = fleet["kimi"].requests[-1].body["messages"]
    assert sent == CACHED_PROMPT  # cache_control blocks passed through unchanged


def test_anthropic_cache_reads_and_writes_through_litellm_are_priced_apart(fleet) -> None:
    fleet["claude"].script(Reply(cached_tokens=600, cache_write_tokens=200))
    response = _post(fleet["url"], "claude-sonnet-4")
    assert response.status_code == 200, response.text
    usage = response.json()["usage"]
    assert response.headers["x-intent-router-cached-tokens"] == "600"
    uncached = usage["prompt_tokens"] - 600 - 200  # litellm counts the cache in prompt_tokens
    assert uncached >= 1
    expected = (uncached * 3.0 + 600 * 0.30 + 200 * 3.75 + usage["completion_tokens"] * 15.0) / 1e6
    assert float(response.headers["x-intent-router-cost-usd"]) == pytest.approx(expected, abs=1e-8)
    sent = fleet["claude"].requests[-1]
    assert sent.path.endswith("/messages")
    assert sent.body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert sent.body["messages"][0]["content"][0] == CACHED_PROMPT[1]["content"][0]


def test_cache_control_reaches_anthropic_unchanged_on_the_fast_path_too(fleet) -> None:
    fleet["claude"].script(Reply(cached_tokens=100))
    response = _post(fleet["url"], "claude-fast")
    assert response.status_code == 200, response.text
    assert response.headers["x-intent-router-deployment"] == "claude-fast"
    assert response.headers["x-intent-router-cached-tokens"] == "100"
    sent = fleet["claude"].requests[-1]
    assert sent.path.endswith("/chat/completions") and sent.body["messages"] == CACHED_PROMPT


@pytest.mark.parametrize(
    ("deployment", "fake", "cached"),
    [("kimi-k2.6", "kimi", 700), ("claude-sonnet-4", "claude", 500)],
)
def test_a_streams_usage_chunk_counts_its_cached_tokens(
    fleet, deployment: str, fake: str, cached: int
) -> None:
    fleet[fake].script(Reply(cached_tokens=cached))
    before = _metric(fleet["url"], deployment, "true")
    usage = _stream(fleet["url"], deployment)
    assert usage["prompt_tokens_details"]["cached_tokens"] == cached
    assert (
        _metric(fleet["url"], deployment, "true") == before + cached
    )  # settled when the stream ended
    assert fleet[fake].requests[-1].body.get("stream") is True


@pytest.mark.parametrize("deployment", ["claude-sonnet-4", "claude-fast"])
def test_cache_control_in_a_stream_reaches_anthropic_unchanged(fleet, deployment: str) -> None:
    fleet["claude"].script(Reply(cached_tokens=300))
    usage = _stream(fleet["url"], deployment)
    assert usage["prompt_tokens_details"]["cached_tokens"] == 300
    sent = fleet["claude"].requests[-1].body
    if deployment == "claude-fast":  # Anthropic's OpenAI-compatible endpoint: as sent
        assert sent["messages"] == CACHED_PROMPT
    else:  # litellm's translation into Anthropic's messages API keeps every marker
        assert sent["system"][0]["cache_control"] == {"type": "ephemeral"}
        assert sent["messages"][0]["content"][0] == CACHED_PROMPT[1]["content"][0]


def test_cache_control_on_a_tool_definition_reaches_anthropic_through_litellm(fleet) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file",
            "parameters": {"type": "object", "properties": {}},
        },
        "cache_control": {"type": "ephemeral"},
    }
    fleet["claude"].script(Reply())
    response = _post(fleet["url"], "claude-sonnet-4", tools=[tool])
    assert response.status_code == 200, response.text
    sent = fleet["claude"].requests[-1].body
    assert sent["tools"][0]["name"] == "read_file"
    assert sent["tools"][0]["cache_control"] == {"type": "ephemeral"}


def test_a_streams_cache_reads_and_writes_reach_the_decision_log_priced_apart(fleet) -> None:
    fleet["claude"].script(Reply(cached_tokens=600, cache_write_tokens=200))
    usage = _stream(fleet["url"], "claude-sonnet-4")
    row = _decision(fleet, usage["request_id"])
    assert (row["cached_tokens"], row["cache_write_tokens"]) == (600, 200)
    uncached = row["prompt_tokens"] - 800
    assert row["prompt_tokens"] == usage["prompt_tokens"] and uncached >= 1
    assert row["cached_input_cost_usd"] == pytest.approx(600 * 0.30 / 1e6)
    assert row["input_cost_usd"] == pytest.approx((uncached * 3.0 + 600 * 0.30 + 200 * 3.75) / 1e6)
    assert row["cost_usd"] == pytest.approx(
        row["input_cost_usd"] + row["completion_tokens"] * 15.0 / 1e6
    )


def test_an_openai_answers_cached_tokens_reach_the_decision_log(fleet) -> None:
    fleet["kimi"].script(Reply(cached_tokens=900))
    response = _post(fleet["url"], "kimi-k2.6")
    row = _decision(fleet, response.headers["x-request-id"])
    assert (row["cached_tokens"], row["cache_write_tokens"]) == (900, 0)
    assert row["cached_input_cost_usd"] == pytest.approx(900 * 0.05 / 1e6)
    assert row["cost_usd"] == pytest.approx(float(response.headers["x-intent-router-cost-usd"]))
