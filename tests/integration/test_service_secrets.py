"""Requests carrying a secret go to the local tier only, fail closed, and are never stored
or traced with the secret."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from intent_router.decisions import DecisionStore
from tests import loopback
from tests.eventually import eventually
from tests.fakes.provider_fleet import Status
from tests.integration.fleet_service import CLOUD, KEYS, OOM, SharedFleets
from tests.integration.inprocess import provide_keys

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"


# One service detects the bundled secret kinds and an extra pattern, stores prompts (redacted);
# another has detection off. No request here reaches Anthropic: no litellm.
DETECTING = {
    "litellm": False,
    "extra": {
        "storage": {"store_prompts": True},
        "sensitive": {"detect_secrets": True, "patterns": {"acme_token": r"\bacme_[0-9a-f]{32}\b"}},
    },
}
NOT_DETECTING = {"extra": {"sensitive": {"detect_secrets": False}}, "litellm": False}


@pytest.fixture(autouse=True)
def _provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    provide_keys(monkeypatch, KEYS)


@pytest.fixture(scope="module")
def fleets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedFleets]:
    with SharedFleets(tmp_path_factory.mktemp("fleets"), in_process=True) as shared:
        yield shared


def test_a_secret_anywhere_in_the_request_keeps_it_on_the_local_tier(fleets: SharedFleets) -> None:
    s = fleets.get(**DETECTING)
    routed = loopback.post(
        f"{s.url}/v1/route", json={"prompt": f"why is {AWS_KEY} rejected by S3?"}
    ).json()
    assert routed["sensitive"] is True and routed["secrets_found"] == ["aws_access_key_id"]
    assert (
        routed["chain"] == ["qwen-32b-local"] and routed["source"] == "model"
    )  # no LLM escalation

    in_user = s.chat("gpt-4o", f"deploy with key {AWS_KEY} please")  # even a named cloud model
    assert in_user.status_code == 200
    assert in_user.headers["x-intent-router-deployment"] == "qwen-32b-local"
    in_tool = loopback.post(
        f"{s.url}/v1/chat/completions",
        json={
            "model": "auto",
            "messages": [
                {"role": "user", "content": "summarise the file"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "read", "arguments": '{"path": "id_ed25519"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": PRIVATE_KEY},
            ],
        },
    )
    assert in_tool.headers["x-intent-router-deployment"] == "qwen-32b-local"
    assert all(s.calls(name) == 0 for name in CLOUD)
    ids = [routed["request_id"], in_user.headers["x-request-id"], in_tool.headers["x-request-id"]]
    assert s.database_url is not None
    store = DecisionStore(s.database_url)
    try:
        rows = eventually(
            lambda: [store.get(i) for i in ids],
            lambda got: None not in got,
            timeout_s=30,
            what="the three decisions logged",
        )
    finally:
        store.dispose()
    assert "[REDACTED:aws_access_key_id]" in rows[0]["prompt_text"]
    database = Path(s.database_url.removeprefix("sqlite:///"))
    raw = b"".join(p.read_bytes() for p in database.parent.glob("decisions.db*"))
    assert AWS_KEY.encode() not in raw and b"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ" not in raw


def test_when_the_local_tier_fails_a_secret_fails_closed(fleets: SharedFleets) -> None:
    s = fleets.get(**DETECTING)
    s.fakes["ollama"].script(Status(500, OOM))
    response = s.chat("auto", f"here is my key {AWS_KEY}, is it leaked?")
    assert response.status_code == 503
    error = response.json()["error"]
    assert "contains a secret: aws_access_key_id" in error["message"]
    assert "not sent to any cloud provider" in error["message"]
    assert AWS_KEY not in response.text
    assert [a["deployment"] for a in error["attempts"]] == ["qwen-32b-local"]
    assert all(s.calls(name) == 0 for name in CLOUD)


def test_detection_can_be_turned_off_and_extended(fleets: SharedFleets) -> None:
    s = fleets.get(**DETECTING)
    routed = loopback.post(f"{s.url}/v1/route", json={"prompt": "use acme_" + "0f" * 16}).json()
    assert routed["secrets_found"] == ["acme_token"] and routed["chain"] == ["qwen-32b-local"]
    s = fleets.get(**NOT_DETECTING)
    routed = loopback.post(f"{s.url}/v1/route", json={"prompt": f"key {AWS_KEY}"}).json()
    assert routed["sensitive"] is False and routed["chain"][0] != "qwen-32b-local"
