"""Resuming a broken stream (``router.stream_resume``) through the real service and fake fleet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from intent_router.decisions import DecisionStore
from intent_router.decisions.store import attempts_of
from tests import loopback
from tests.eventually import eventually
from tests.fakes.provider_fleet import BrokenStream, Status
from tests.integration.fleet_service import KEYS, Setup, SharedFleets
from tests.integration.inprocess import provide_keys

NEVER_TRIPS = {"failures": 1000, "seconds": 60}  # a shared service: no cooldown carries over
PROMPT = "rename getUser to fetchUser everywhere"  # refactoring: kimi, gpt, together, claude
WORDS = ["ok", " from", " fake", " stream"]  # what a fake streams
RESUME = {"cooldown": NEVER_TRIPS, "stream_resume": True}


@pytest.fixture(autouse=True)
def _provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    provide_keys(monkeypatch, KEYS)


@pytest.fixture(scope="module")
def fleets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedFleets]:
    with SharedFleets(tmp_path_factory.mktemp("fleets"), in_process=True) as shared:
        yield shared


def _stream(s: Setup) -> tuple[httpx.Headers, list[str]]:
    body = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": PROMPT}]}
    with loopback.stream("POST", f"{s.url}/v1/chat/completions", json=body, timeout=30) as response:
        assert response.status_code == 200
        return response.headers, [line for line in response.iter_lines() if line]


def _chunks(lines: list[str]) -> list[dict[str, Any]]:
    assert all(line.startswith("data: ") for line in lines)
    return [json.loads(line[6:]) for line in lines if line != "data: [DONE]"]


def _text(chunks: list[dict[str, Any]]) -> str:
    return "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices")
    )


def _attempts(s: Setup, request_id: str) -> list[tuple[str, str]]:
    return [(a.deployment, a.outcome) for a in attempts_of(_row(s, request_id))]


def _row(s: Setup, request_id: str) -> dict[str, Any]:
    """The request's decision row, once the decision log has it (within 10 s)."""
    assert s.database_url is not None
    store = DecisionStore(s.database_url)
    try:
        row = eventually(
            lambda: store.get(request_id),
            lambda got: got is not None,
            timeout_s=10,
            what=f"the decision of {request_id}",
        )
        return row
    finally:
        store.dispose()


@pytest.mark.parametrize("sent", [1, 3])
def test_a_stream_broken_after_some_chunks_is_continued_as_one_response(
    fleets: SharedFleets, sent: int
) -> None:
    s = fleets.get(router=RESUME, litellm=False)
    s.fakes["kimi"].script(BrokenStream(chunks_before_break=sent))
    headers, lines = _stream(s)
    chunks = _chunks(lines)
    prefix = "".join(WORDS[:sent])
    assert lines[-1] == "data: [DONE]" and lines.count("data: [DONE]") == 1
    assert not any("error" in c for c in chunks)
    assert len({c["id"] for c in chunks}) == 1 and len({c["model"] for c in chunks}) == 1
    assert [c for c in chunks if c["choices"] and "role" in c["choices"][0]["delta"]] == chunks[:1]
    assert _text(chunks) == prefix + "".join(WORDS)
    (continued,) = s.fakes["gpt"].requests
    messages = continued.body["messages"]
    assert messages[0] == {"role": "user", "content": PROMPT}
    assert messages[1] == {"role": "assistant", "content": prefix}
    assert messages[2]["role"] == "user" and "continue" in messages[2]["content"].lower()
    assert (
        chunks[0]["model"] == s.fakes["kimi"].requests[0].body["model"] != continued.body["model"]
    )
    assert headers["x-intent-router-intent"] == "refactoring"
    assert headers["x-intent-router-deployment"] == "kimi-k2.6"
    assert _attempts(s, headers["x-request-id"]) == [("kimi-k2.6", "failed"), ("gpt-4o", "ok")]


def test_the_openai_sdk_reads_a_resumed_stream_as_one_answer(fleets: SharedFleets) -> None:
    s = fleets.get(router=RESUME, litellm=False)
    s.fakes["kimi"].script(BrokenStream(chunks_before_break=2))
    client = openai.OpenAI(base_url=f"{s.url}/v1", api_key="client-key", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="auto", stream=True, messages=[{"role": "user", "content": PROMPT}]
        )
    )
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "ok fromok from fake stream"
    )
    assert len({c.id for c in chunks}) == 1 and chunks[-1].choices[0].finish_reason == "stop"


def test_a_continuation_that_breaks_too_is_continued_with_all_the_text_sent(
    fleets: SharedFleets,
) -> None:
    s = fleets.get(router=RESUME, litellm=False)
    s.fakes["kimi"].script(BrokenStream(chunks_before_break=2))
    s.fakes["gpt"].script(BrokenStream(chunks_before_break=1))
    headers, lines = _stream(s)
    chunks = _chunks(lines)
    assert lines.count("data: [DONE]") == 1 and lines[-1] == "data: [DONE]"
    assert _text(chunks) == "ok from" + "ok" + "ok from fake stream"
    assert s.fakes["together"].requests[0].body["messages"][1] == {
        "role": "assistant",
        "content": "ok fromok",
    }
    assert _attempts(s, headers["x-request-id"]) == [
        ("kimi-k2.6", "failed"),
        ("gpt-4o", "failed"),
        ("kimi-k2.6-together", "ok"),
    ]


def test_when_no_deployment_can_continue_the_stream_ends_with_the_error_event(
    fleets: SharedFleets,
) -> None:
    s = fleets.get(router=RESUME, litellm=False)
    s.fakes["kimi"].script(BrokenStream(chunks_before_break=2))
    for name in ("together", "claude", "gpt"):
        s.fakes[name].script(Status(503, "down"))
    headers, lines = _stream(s)
    assert "data: [DONE]" not in lines
    assert json.loads(lines[-1][6:])["error"]["code"] == "upstream_stream_failed"
    assert _text(_chunks(lines[:-1])) == "ok from"
    assert _attempts(s, headers["x-request-id"]) == [
        ("kimi-k2.6", "failed"),
        ("gpt-4o", "failed"),
        ("kimi-k2.6-together", "failed"),
        ("claude-sonnet-4", "failed"),
    ]


def test_a_stream_carrying_tool_calls_is_not_resumed(fleets: SharedFleets) -> None:
    s = fleets.get(router=RESUME, litellm=False)
    s.fakes["kimi"].script(BrokenStream(chunks_before_break=2, tool_call=True))
    _, lines = _stream(s)
    assert "data: [DONE]" not in lines and "error" in json.loads(lines[-1][6:])
    assert len(lines) == 3 and s.calls("gpt") == 0


def test_with_resume_off_a_broken_stream_ends_with_the_error_event(fleets: SharedFleets) -> None:
    s = fleets.get(router={"cooldown": NEVER_TRIPS}, litellm=False)
    s.fakes["kimi"].script(BrokenStream(chunks_before_break=2))
    _, lines = _stream(s)
    assert "data: [DONE]" not in lines and "error" in json.loads(lines[-1][6:])
    assert _text(_chunks(lines[:-1])) == "ok from" and s.calls("gpt") == 0


def test_a_client_that_leaves_mid_stream_is_recorded_as_gone(fleets: SharedFleets) -> None:
    # The upstream sends one chunk and then nothing for a while: the client reads it and leaves.
    s = fleets.get(router={"cooldown": NEVER_TRIPS}, litellm=False)
    s.fakes["kimi"].script(BrokenStream(chunks_before_break=1, stall_s=5))
    body = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": PROMPT}]}
    with loopback.stream("POST", f"{s.url}/v1/chat/completions", json=body, timeout=30) as response:
        request_id = response.headers["x-request-id"]
        assert next(response.iter_lines()).startswith("data: ")
    row = _row(s, request_id)  # the stream's end was handled: closed, counted, recorded
    assert (row["status"], row["error"], row["deployment"]) == (
        "failed",
        "client went away",
        "kimi-k2.6",
    )
