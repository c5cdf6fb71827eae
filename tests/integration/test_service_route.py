"""/v1/route and the probes, through the real service (served in-process) over a socket."""

from __future__ import annotations

import pytest

from intent_router.labels import INTENTS
from tests import loopback
from tests.integration.inprocess import serving_in_process
from tests.integration.service_process import untracked_config


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> str:
    with serving_in_process(
        untracked_config(tmp_path_factory.mktemp("route"), litellm=True)
    ) as url:
        yield url


def test_probes_and_models(service: str) -> None:
    assert loopback.get(f"{service}/healthz").json()["status"] == "ok"
    # Ready at once (litellm loads on the first call that needs it, not before), and degraded:
    # no key is set (ready only if a local Ollama happens to listen).
    probe = loopback.get(f"{service}/readyz")
    assert (probe.status_code, probe.json()["status"]) in ((200, "degraded"), (200, "ready"))
    ids = [m["id"] for m in loopback.get(f"{service}/v1/models").json()["data"]]
    assert ids[0] == "auto" and "claude-sonnet-4" in ids


def test_route_answers_intent_chain_and_cost(service: str) -> None:
    body = {
        "messages": [
            {"role": "system", "content": "you are helpful"},
            {"role": "user", "content": "rename getUser to fetchUser everywhere"},
        ]
    }
    answer = loopback.post(f"{service}/v1/route", json=body).json()
    assert answer["intent"] == "refactoring" and answer["source"] == "model"
    assert answer["chain"][0] == "kimi-k2.6" and answer["estimated_cost_usd"] > 0
    assert set(answer["probabilities"]) == set(INTENTS)
    assert answer["model_version"] and 0 < answer["threshold"] < 1


def test_sensitive_metadata_routes_local_only(service: str) -> None:
    answer = loopback.post(
        f"{service}/v1/route", json={"prompt": "fix auth", "metadata": {"sensitive": True}}
    ).json()
    assert answer["chain"] == ["qwen-32b-local"]


@pytest.mark.parametrize(
    "content, fragment, status",
    [
        (b"{not json", "malformed", 400),
        (b'{"prompt": "\xff\xfe"}', "UTF-8", 400),
        (b'{"prompt": 5}', "invalid request body", 400),
        (b'{"messages": "hello"}', "invalid request body", 400),
        (b'{"messages": []}', "length >= 1", 400),
        (b"{}", "'messages'", 400),
        (b'{"prompt": "hi", "model": "gpt-9"}', "unknown model", 404),
    ],
)
def test_bad_requests_get_a_clear_4xx_in_openai_format(
    service: str, content: bytes, fragment: str, status: int
) -> None:
    response = loopback.post(
        f"{service}/v1/route", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and fragment in error["message"]


def test_oversize_bodies_get_413(service: str) -> None:
    response = loopback.post(
        f"{service}/v1/route",
        content=b"x" * (1024 * 1024 + 10),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413 and "error" in response.json()


def test_a_million_character_prompt_is_classified(service: str) -> None:
    answer = loopback.post(
        f"{service}/v1/route", json={"prompt": "fix this crash " + "a" * 900_000}, timeout=10
    )
    assert answer.status_code == 200 and answer.json()["intent"] in INTENTS


def test_a_short_follow_up_is_classified_with_the_earlier_turns_and_says_which(
    service: str,
) -> None:
    audit = "the login endpoint is vulnerable to sql injection, audit the auth module for other injection bugs"
    body = {
        "messages": [
            {"role": "user", "content": audit},
            {"role": "assistant", "content": "Found two more."},
            {"role": "user", "content": "now the tests"},
        ]
    }
    answer = loopback.post(f"{service}/v1/route", json=body).json()
    assert answer["turns_used"] == [0, 2]  # message indexes, oldest first
    assert answer["intent"] == answer["routed_as"] == "security_audit"
    alone = loopback.post(f"{service}/v1/route", json={"prompt": "now the tests"}).json()
    assert alone["turns_used"] == [0] and alone["intent"] != "security_audit"
    with_context = loopback.post(
        f"{service}/v1/route", json={"prompt": "now the tests", "context": [audit]}
    ).json()
    assert with_context["turns_used"] == [0, 1] and with_context["intent"] == "security_audit"
    long_turn = "please write a README section on installing with uv and running make test"
    separate = loopback.post(
        f"{service}/v1/route", json={"prompt": long_turn, "context": [audit]}
    ).json()
    assert separate["turns_used"] == [1]  # not a follow-up: classified alone
