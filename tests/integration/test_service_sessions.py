"""Sticky sessions over real sockets: /v1/route and chat (plain and streaming) keep a session on
the chain its first turn chose, switch when its deployment cools down, upgrade on a confident
high-stakes turn, and two services sharing Redis agree on a session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from intent_router.decisions import DecisionStore
from tests import loopback
from tests.fakes.provider_fleet import Status
from tests.integration.fleet_service import KEYS, Setup, SharedFleets, fake_fleet, fleet_config
from tests.integration.inprocess import provide_keys
from tests.integration.service_process import free_port, running_services, wait_for

REDIS_URL = "redis://127.0.0.1:6379/0"
NEVER_TRIPS = {"cooldown": {"failures": 1000, "seconds": 60}}
TRACEBACK = (
    'Traceback (most recent call last):\n  File "app.py", line 12, in <module>\n    main()\n'
    "KeyError: 'user_id' -- why does this crash?"
)
DOCS = "now write a README section that documents the configuration options of this module"
CODE = "write a python function that parses a CSV file of orders and returns the total per customer"
AUDIT = "audit this login handler for SQL injection and other security vulnerabilities"


@pytest.fixture(autouse=True)
def _provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    provide_keys(monkeypatch, KEYS)


@pytest.fixture(scope="module")
def fleets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedFleets]:
    with SharedFleets(tmp_path_factory.mktemp("sessions"), in_process=True) as shared:
        yield shared


#: Kimi on Cloudflare and on Together as one model group (weighted 1:1).
KIMI_GROUP = {"kimi-k2.6": {"group": "kimi"}, "kimi-k2.6-together": {"group": "kimi"}}


def _shared(fleets: SharedFleets) -> Setup:
    return fleets.get(router=NEVER_TRIPS, deployments=KIMI_GROUP, litellm=False)


def _own(fleets: SharedFleets) -> Setup:
    """A configuration apart from ``_shared``'s: a cooldown one of its tests starts outlives it
    (Claude's; the resume test never calls Claude)."""
    return fleets.get(
        router={"cooldown": {"failures": 1000, "seconds": 61}, "stream_resume": True}, litellm=False
    )


def _conversation(*turns: str) -> list[dict[str, str]]:
    """User turns with an assistant answer between each two, as an agent sends them."""
    messages: list[dict[str, str]] = [{"role": "system", "content": "You are a coding agent."}]
    for index, text in enumerate(turns):
        if index:
            messages.append({"role": "assistant", "content": "done"})
        messages.append({"role": "user", "content": text})
    return messages


def _route(setup: Setup, *turns: str, session: str | None = None, **extra: Any) -> httpx.Response:
    headers = {"x-session-id": session} if session else {}
    response = loopback.post(
        f"{setup.url}/v1/route",
        json={"messages": _conversation(*turns), **extra},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response


def _chat(
    setup: Setup, *turns: str, session: str | None = None, stream: bool = False
) -> httpx.Response:
    headers = {"x-session-id": session} if session else {}
    body = {"model": "auto", "messages": _conversation(*turns), "stream": stream}
    response = loopback.post(
        f"{setup.url}/v1/chat/completions", json=body, headers=headers, timeout=30
    )
    assert response.status_code == 200, response.text
    return response


def test_a_route_session_sticks_to_its_first_chain_and_says_why(fleets: SharedFleets) -> None:
    setup = _shared(fleets)
    session = f"task-{uuid.uuid4().hex}"
    first = _route(setup, TRACEBACK, session=session)
    assert first.headers["x-intent-router-session"] == "new"
    assert first.json()["chain"][0] == "claude-sonnet-4"
    # Alone, the docs turn goes to Kimi; in the session it stays on Claude.
    alone = _route(setup, DOCS)
    assert alone.json()["chain"][0] == "kimi-k2.6" and alone.json()["session"]["outcome"] == "new"
    second = _route(setup, TRACEBACK, DOCS, session=session)
    body = second.json()
    assert body["intent"] == "documentation" and body["chain"][0] == "claude-sonnet-4"
    assert body["session"]["outcome"] == "stuck" and body["session"]["sticky"] is True
    assert second.headers["x-intent-router-session"] == "stuck"
    assert "turn 2" in second.headers["x-intent-router-session-reason"]
    assert (
        body["session"]["id"] == first.json()["session"]["id"]
        and session not in body["session"]["id"]
    )


def test_a_derived_session_continues_a_conversation_without_an_id(fleets: SharedFleets) -> None:
    setup = _shared(fleets)
    opening = f"{TRACEBACK} ({uuid.uuid4().hex})"  # a conversation of its own
    first = _route(setup, opening, metadata={"user": "ana"})
    later = _route(setup, opening, DOCS, metadata={"user": "ana"})
    other_user = _route(setup, opening, DOCS, metadata={"user": "bob"})
    assert first.json()["session"]["outcome"] == "new"
    assert (
        later.json()["session"]["outcome"] == "stuck"
        and later.json()["chain"][0] == "claude-sonnet-4"
    )
    assert (
        other_user.json()["session"]["outcome"] == "new"
        and other_user.json()["chain"][0] == "kimi-k2.6"
    )


def test_a_confident_security_turn_upgrades_a_code_session(fleets: SharedFleets) -> None:
    setup = _shared(fleets)
    session = uuid.uuid4().hex
    assert _route(setup, CODE, session=session).json()["chain"][0] == "kimi-k2.6"
    upgraded = _route(setup, CODE, AUDIT, session=session).json()
    assert (
        upgraded["session"]["outcome"] == "upgraded" and upgraded["chain"][0] == "claude-sonnet-4"
    )
    assert "security_audit at confidence" in upgraded["session"]["reason"]
    after = _route(setup, CODE, AUDIT, DOCS, session=session).json()  # never back down
    assert (after["session"]["outcome"], after["chain"][0]) == ("stuck", "claude-sonnet-4")


async def test_redis_sessions_are_shared_and_a_redis_outage_degrades_to_in_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from intent_router.routing.session_store import InProcessSessions, RedisSessions
    from intent_router.types import SessionState

    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    state = SessionState(("claude-sonnet-4", "gpt-4o"), "gpt-4o", "debugging", 0.9, 2, 4e9)
    here, there = (RedisSessions(REDIS_URL, prefix, InProcessSessions(10)) for _ in range(2))
    down = RedisSessions(f"redis://127.0.0.1:{free_port()}/0", prefix, InProcessSessions(10))
    try:
        await here.put("k", state)
        assert await there.get("k") == state and await there.get("other") is None
        with caplog.at_level("WARNING", logger="intent_router.sessions"):
            await down.put("k", state)  # refused: kept in this process, no exception
            assert await down.get("k") == state
        assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
        assert "sessions are kept per process" in caplog.records[0].message
    finally:
        for store in (here, there, down):
            await store.aclose()


def test_two_services_sharing_redis_agree_on_a_session(tmp_path: Path) -> None:
    with ExitStack() as stack:
        fakes = stack.enter_context(fake_fleet())
        prefix = f"test-{uuid.uuid4().hex[:8]}:"
        config = fleet_config(
            tmp_path,
            fakes,
            router=NEVER_TRIPS,
            extra={"governance": {"redis_prefix": prefix}},
            litellm=False,
        )
        a, b = stack.enter_context(
            running_services(2, config, env={**KEYS, "INTENT_ROUTER_REDIS_URL": REDIS_URL})
        )
        session = uuid.uuid4().hex
        first = _route(Setup(a, fakes), TRACEBACK, session=session)
        second = _route(Setup(b, fakes), TRACEBACK, DOCS, session=session)
        assert first.json()["session"]["outcome"] == "new"
        assert (
            second.json()["session"]["outcome"] == "stuck"
            and second.json()["chain"][0] == "claude-sonnet-4"
        )
        # Chat: the session moves to GPT-4o on one service (Claude fails there), the other follows.
        chat = uuid.uuid4().hex
        _chat(Setup(b, fakes), TRACEBACK, session=chat)
        fakes["claude"].script(Status(503, "overloaded"))
        moved = _chat(Setup(a, fakes), TRACEBACK, "yes do it", session=chat)
        followed = _chat(Setup(b, fakes), TRACEBACK, "yes do it", DOCS, session=chat)
        assert moved.headers["x-intent-router-session"] == "switched"
        assert (
            followed.headers["x-intent-router-deployment"],
            followed.headers["x-intent-router-session"],
        ) == ("gpt-4o", "stuck")


def test_the_decision_log_records_the_hashed_session_and_the_outcome(fleets: SharedFleets) -> None:
    setup = _shared(fleets)
    assert setup.database_url is not None
    session = f"secret-looking-{uuid.uuid4().hex}"
    ids = [
        _route(setup, *turns, session=session).json()["request_id"]
        for turns in ((TRACEBACK,), (TRACEBACK, DOCS))
    ]
    store = DecisionStore(setup.database_url)
    try:
        wait_for(lambda: len([r for r in store.after(0) if r["request_id"] in ids]) == 2)
        rows = {r["request_id"]: r for r in store.after(0) if r["request_id"] in ids}
    finally:
        store.dispose()
    assert [rows[i]["session"] for i in ids] == ["new", "stuck"]
    hashed = {rows[i]["session_id"] for i in ids}
    assert len(hashed) == 1 and len(hashed.pop()) == 64
    assert all(session not in str(row) for row in rows.values())


def test_a_chat_session_keeps_its_model_through_yes_do_it_and_a_docs_turn(
    fleets: SharedFleets,
) -> None:
    setup = _shared(fleets)
    session = uuid.uuid4().hex
    stuck_before = setup.metric(
        'intent_router_session_turns_total{endpoint="chat",outcome="stuck"}'
    )
    turns = (TRACEBACK, "yes do it", DOCS)
    answers = [_chat(setup, *turns[:n], session=session) for n in (1, 2, 3)]
    assert [a.headers["x-intent-router-deployment"] for a in answers] == ["claude-sonnet-4"] * 3
    assert [a.headers["x-intent-router-session"] for a in answers] == ["new", "stuck", "stuck"]
    assert answers[2].headers["x-intent-router-intent"] == "documentation"  # alone: Kimi's chain
    assert setup.calls("claude") == 3 and setup.calls("kimi") == 0
    assert (
        setup.metric('intent_router_session_turns_total{endpoint="chat",outcome="stuck"}')
        == stuck_before + 2
    )


def test_a_chat_session_upgrades_on_a_confident_security_turn(fleets: SharedFleets) -> None:
    setup = _shared(fleets)
    session = uuid.uuid4().hex
    first = _chat(setup, CODE, session=session)
    upgraded = _chat(setup, CODE, AUDIT, session=session, stream=True)
    assert first.headers["x-intent-router-deployment"] in KIMI_GROUP
    assert upgraded.headers["x-intent-router-session"] == "upgraded"
    assert upgraded.headers["x-intent-router-deployment"] == "claude-sonnet-4"
    assert upgraded.text.rstrip().endswith("data: [DONE]")


def test_a_failing_deployment_moves_the_session_to_the_one_that_answered(
    fleets: SharedFleets,
) -> None:
    setup = _shared(fleets)
    session = uuid.uuid4().hex
    _chat(setup, TRACEBACK, session=session)
    setup.fakes["claude"].script(Status(503, "overloaded"))
    moved = _chat(setup, TRACEBACK, "yes do it", session=session)
    assert (
        moved.headers["x-intent-router-deployment"],
        moved.headers["x-intent-router-session"],
    ) == ("gpt-4o", "switched")
    assert "now sticks to gpt-4o" in moved.headers["x-intent-router-session-reason"]
    # Claude answers again, but the session's cache is at OpenAI now: it stays there.
    after = _chat(
        setup, TRACEBACK, "yes do it", "and add a test for it", session=session, stream=True
    )
    assert (
        after.headers["x-intent-router-deployment"],
        after.headers["x-intent-router-session"],
    ) == ("gpt-4o", "stuck")


def test_a_cooling_down_deployment_switches_the_session_then_it_sticks(
    fleets: SharedFleets,
) -> None:
    setup = _own(fleets)
    session = uuid.uuid4().hex
    assert (
        _chat(setup, TRACEBACK, session=session).headers["x-intent-router-deployment"]
        == "claude-sonnet-4"
    )
    setup.fakes["claude"].script(Status(429, "slow down", retry_after=120))
    _chat(setup, TRACEBACK)  # another conversation meets the 429: Claude cools down
    assert setup.calls("claude") == 2
    switched = _chat(setup, TRACEBACK, "yes do it", session=session)
    assert (
        switched.headers["x-intent-router-deployment"],
        switched.headers["x-intent-router-session"],
    ) == ("gpt-4o", "switched")
    assert "claude-sonnet-4 is cooling down" in switched.headers["x-intent-router-session-reason"]
    stuck = _chat(setup, TRACEBACK, "yes do it", "and add a test for it", session=session)
    assert (
        stuck.headers["x-intent-router-deployment"],
        stuck.headers["x-intent-router-session"],
    ) == ("gpt-4o", "stuck")
    assert setup.calls("claude") == 2  # never asked while cooling down


def test_with_redis_down_sessions_stay_per_process_and_nothing_fails(tmp_path: Path) -> None:
    with ExitStack() as stack:
        fakes = stack.enter_context(fake_fleet())
        config = fleet_config(tmp_path, fakes, router=NEVER_TRIPS, litellm=False)
        log = tmp_path / "service.log"
        dead = f"redis://127.0.0.1:{free_port()}/0"
        (url,) = stack.enter_context(
            running_services(1, config, env={**KEYS, "INTENT_ROUTER_REDIS_URL": dead}, log=log)
        )
        setup, session = Setup(url, fakes), uuid.uuid4().hex
        assert _chat(setup, TRACEBACK, session=session).headers["x-intent-router-session"] == "new"
        stuck = _chat(setup, TRACEBACK, DOCS, session=session)
        assert (
            stuck.headers["x-intent-router-session"],
            stuck.headers["x-intent-router-deployment"],
        ) == ("stuck", "claude-sonnet-4")
        wait_for(lambda: "sessions are kept per process" in log.read_text())


def test_a_resumed_stream_moves_the_session_to_the_deployment_that_finished_it(
    fleets: SharedFleets,
) -> None:
    from tests.fakes.provider_fleet import BrokenStream

    setup = _own(fleets)
    session, refactor = (
        uuid.uuid4().hex,
        "rename getUser to fetchUser everywhere",
    )  # kimi, then gpt-4o
    setup.fakes["kimi"].script(BrokenStream(chunks_before_break=1))
    broken = _chat(setup, refactor, session=session, stream=True)
    assert broken.headers["x-intent-router-deployment"] == "kimi-k2.6"  # sent before the break
    assert broken.text.rstrip().endswith("data: [DONE]") and setup.calls("gpt") == 1
    after = _chat(setup, refactor, "yes do it", session=session)
    assert (
        after.headers["x-intent-router-deployment"],
        after.headers["x-intent-router-session"],
    ) == ("gpt-4o", "stuck")


def test_a_session_sticks_to_the_group_member_that_answered_first(fleets: SharedFleets) -> None:
    setup = _shared(fleets)
    session, turns = uuid.uuid4().hex, [CODE]
    first = _chat(setup, *turns, session=session).headers["x-intent-router-deployment"]
    for follow_up in ("yes do it", "now add type hints", "and a docstring", "run it again") * 3:
        turns.append(follow_up)
        answer = _chat(setup, *turns, session=session)
        # Without the session, each turn would pick a member at random (1:1): 12 alike by chance, p = 1/4096.
        assert (
            answer.headers["x-intent-router-deployment"],
            answer.headers["x-intent-router-session"],
        ) == (first, "stuck")
    other = "together" if first == "kimi-k2.6" else "kimi"
    assert setup.calls(other) == 0
