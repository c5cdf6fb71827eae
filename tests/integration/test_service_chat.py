"""/v1/chat/completions through the real service (served in-process) and the fake fleet."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
import yaml

from intent_router.config import DEFAULT_CONFIG
from tests import loopback
from tests.fakes.provider_fleet import BrokenStream, FakeProvider, Status
from tests.integration.inprocess import provide_keys, serving_in_process

KEYS = {
    "CLOUDFLARE_API_KEY": "cf-secret-123",
    "ANTHROPIC_API_KEY": "sk-ant-secret-456",
    "OPENAI_API_KEY": "sk-openai-secret-789",
}
ARCHITECTURE = "should we split our monolith into microservices or keep a modular monolith?"


@pytest.fixture(autouse=True)
def _provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    provide_keys(monkeypatch, KEYS)


@pytest.fixture(scope="module")
def fleet_and_service(tmp_path_factory: pytest.TempPathFactory):
    with FakeProvider("kimi") as kimi, FakeProvider("claude") as claude, FakeProvider("gpt") as gpt:
        raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
        deployments = raw["deployments"]
        deployments["kimi-k2.6"].update(api_base=f"{kimi.url}/v1", api_style="openai", timeout_s=2)
        deployments["gpt-4o"].update(api_base=f"{gpt.url}/v1", timeout_s=2)
        deployments["claude-sonnet-4"].update(api_base=claude.url, timeout_s=2)
        raw["router"]["confidence_threshold"] = 0.0  # no escalation: these tests are about chains
        raw["router"]["request_deadline_s"] = 5
        raw["tracking"]["enabled"] = False  # no MLflow tracker: these tests are about chains
        path = tmp_path_factory.mktemp("cfg") / "router.yaml"
        path.write_text(yaml.safe_dump(raw))
        with serving_in_process(path, env=KEYS, ready=True) as url:
            yield {"url": url, "kimi": kimi, "claude": claude, "gpt": gpt}


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="client-key", max_retries=0)


def test_the_openai_sdk_gets_a_routed_answer(fleet_and_service) -> None:
    f = fleet_and_service
    raw = _client(f["url"]).chat.completions.with_raw_response.create(
        model="auto",
        messages=[{"role": "user", "content": "rename getUser to fetchUser everywhere"}],
    )
    reply = raw.parse()
    assert reply.choices[0].message.content == "ok from fake"
    assert raw.headers["x-intent-router-intent"] == "refactoring"
    assert raw.headers["x-intent-router-deployment"] == "kimi-k2.6"
    assert float(raw.headers["x-intent-router-cost-usd"]) > 0
    assert f["kimi"].requests[-1].body["model"] == "@cf/moonshotai/kimi-k2.6"
    assert f["kimi"].requests[-1].headers["Authorization"] == "Bearer cf-secret-123"


def test_a_chat_follow_up_is_routed_with_the_earlier_user_turns(fleet_and_service) -> None:
    f = fleet_and_service
    audit = "the login endpoint is vulnerable to sql injection, audit the auth module for other injection bugs"
    raw = _client(f["url"]).chat.completions.with_raw_response.create(
        model="auto",
        messages=[
            {"role": "user", "content": audit},
            {"role": "assistant", "content": "Found two more."},
            {"role": "user", "content": "now the tests"},
        ],
    )
    assert raw.headers["x-intent-router-intent"] == "security_audit"  # alone: refactoring
    assert raw.headers["x-intent-router-deployment"] == "claude-sonnet-4"


def test_529_from_anthropic_falls_back_to_openai(fleet_and_service) -> None:
    f = fleet_and_service
    f["claude"].script(Status(529, "Overloaded"))
    seen = len(f["claude"].requests)
    raw = _client(f["url"]).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": ARCHITECTURE}]
    )
    assert raw.headers["x-intent-router-intent"] == "architecture_review"
    assert raw.headers["x-intent-router-deployment"] == "gpt-4o"
    assert raw.headers["x-intent-router-attempts"] == "2"
    assert len(f["claude"].requests) == seen + 1  # Anthropic really answered the 529


def test_a_concrete_deployment_skips_classification(fleet_and_service) -> None:
    f = fleet_and_service
    raw = _client(f["url"]).chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hello"}]
    )
    assert raw.headers["x-intent-router-intent"] == "-"
    assert raw.headers["x-intent-router-deployment"] == "gpt-4o"


def test_every_deployment_failing_is_a_503_listing_attempts(fleet_and_service) -> None:
    f = fleet_and_service
    f["claude"].script(Status(503, "down"))
    f["gpt"].script(Status(500, "boom"))
    f["kimi"].script(Status(502, "bad gateway"))
    response = loopback.post(
        f"{f['url']}/v1/chat/completions",
        timeout=10,
        json={"model": "auto", "messages": [{"role": "user", "content": ARCHITECTURE}]},
    )
    assert response.status_code == 503
    error = response.json()["error"]
    assert [(a["deployment"], a["outcome"]) for a in error["attempts"]] == [
        ("claude-sonnet-4", "failed"),
        ("gpt-4o", "failed"),
        ("kimi-k2.6", "failed"),
        ("kimi-k2.6-together", "skipped_no_key"),
    ]  # no $TOGETHER_API_KEY in this service
    assert "$TOGETHER_API_KEY" in error["message"]
    for secret in KEYS.values():
        assert secret not in response.text


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "auto"}, 400, None),
        ({"model": "auto", "messages": []}, 400, "messages"),
        ({"messages": [{"role": 3, "content": "x"}]}, 400, "messages[0].role"),
        (
            {"messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
            400,
            "temperature",
        ),
        ({"model": "nope", "messages": [{"role": "user", "content": "x"}]}, 404, None),
    ],
)
def test_bad_chat_requests_get_a_clear_4xx(fleet_and_service, body, status, param) -> None:
    response = loopback.post(f"{fleet_and_service['url']}/v1/chat/completions", json=body)
    assert response.status_code == status, body
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    if status == 404:
        assert error["code"] == "model_not_found" and "'nope'" in error["message"]


def test_tools_and_tool_calls_reach_the_provider_as_sent(fleet_and_service) -> None:
    f = fleet_and_service
    tools = [
        {
            "type": "function",
            "function": {
                "name": "read_file",
                "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
            },
        }
    ]
    messages = [
        {"role": "user", "content": "write a function that parses ISO dates"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "a.py"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "def parse(): ..."},
    ]
    response = loopback.post(
        f"{f['url']}/v1/chat/completions",
        json={
            "model": "auto",
            "messages": messages,
            "tools": tools,
            "tool_choice": "auto",
            "metadata": {"repo": "acme/api"},
            "seed": 7,
        },
    )
    assert response.status_code == 200
    sent = f["kimi"].requests[-1].body
    assert sent["messages"] == messages and sent["tools"] == tools and sent["seed"] == 7
    assert "metadata" not in sent and sent["model"] == "@cf/moonshotai/kimi-k2.6"


def test_a_missing_provider_key_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in KEYS:  # a service started with no key at all (_provider_keys set them)
        monkeypatch.delenv(name)
    with FakeProvider("gpt") as gpt:
        raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
        raw["deployments"]["gpt-4o"].update(api_base=f"{gpt.url}/v1")
        raw["tracking"]["enabled"] = False
        path = tmp_path / "router.yaml"
        path.write_text(yaml.safe_dump(raw))
        with serving_in_process(path) as url:
            response = loopback.post(
                f"{url}/v1/chat/completions",
                json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]},
            )
    assert response.status_code == 503
    error = response.json()["error"]
    assert "$OPENAI_API_KEY" in error["message"] and "$ANTHROPIC_API_KEY" in error["message"]
    assert {a["outcome"] for a in error["attempts"]} == {"skipped_no_key"}
    assert gpt.requests == []


def test_streaming_through_the_openai_sdk(fleet_and_service) -> None:
    f = fleet_and_service
    raw = _client(f["url"]).chat.completions.with_raw_response.create(
        model="auto",
        stream=True,
        messages=[{"role": "user", "content": "rename getUser to fetchUser"}],
    )
    assert raw.headers["x-intent-router-deployment"] == "kimi-k2.6"
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "ok from fake stream"


def test_a_stream_failing_before_its_first_chunk_falls_back(fleet_and_service) -> None:
    f = fleet_and_service
    f["claude"].script(Status(529, "Overloaded"))
    with loopback.stream(
        "POST",
        f"{f['url']}/v1/chat/completions",
        timeout=10,
        json={
            "model": "auto",
            "stream": True,
            "messages": [{"role": "user", "content": ARCHITECTURE}],
        },
    ) as response:
        body = response.read().decode()
        assert response.headers["x-intent-router-deployment"] == "gpt-4o"
    assert body.rstrip().endswith("data: [DONE]") and "ok" in body


def test_a_stream_broken_after_its_first_chunk_ends_with_an_error_event(fleet_and_service) -> None:
    f = fleet_and_service
    f["kimi"].script(BrokenStream(chunks_before_break=2))
    with loopback.stream(
        "POST",
        f"{f['url']}/v1/chat/completions",
        timeout=10,
        json={
            "model": "auto",
            "stream": True,
            "messages": [{"role": "user", "content": "rename getUser to fetchUser"}],
        },
    ) as response:
        lines = [line for line in response.iter_lines() if line]
    assert len([line for line in lines if '"delta"' in line]) == 2
    assert '"error"' in lines[-1] and "data: [DONE]" not in lines


def test_metrics_count_requests_fallbacks_errors_and_cost(fleet_and_service) -> None:
    f = fleet_and_service
    f["claude"].script(Status(529, "Overloaded"))
    _client(f["url"]).chat.completions.create(
        model="auto", messages=[{"role": "user", "content": ARCHITECTURE}]
    )
    text = loopback.get(f"{f['url']}/metrics").text
    assert (
        'intent_router_requests_total{endpoint="chat",intent="architecture_review",source="model",status="200"}'
        in text
    )
    fallbacks = [
        line for line in text.splitlines() if line.startswith("intent_router_fallbacks_total ")
    ]
    assert fallbacks and float(fallbacks[0].split()[1]) >= 1
    assert (
        'intent_router_provider_errors_total{deployment="claude-sonnet-4",outcome="failed",status="529"}'
        in text
    )
    assert 'intent_router_cost_usd_total{deployment="gpt-4o"}' in text
    assert 'intent_router_request_seconds_count{endpoint="chat",status="200"}' in text
    for secret in KEYS.values():
        assert secret not in text
