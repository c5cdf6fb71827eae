"""The Router within a sticky session (provider calls and the classifier injected, no HTTP;
tests/integration/test_service_sessions.py covers the sockets), and the in-process store."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from intent_router.config import DEFAULT_CONFIG, Deployment, parse_config
from intent_router.exceptions import ProviderError
from intent_router.labels import INTENTS
from intent_router.router import Router, Turn
from intent_router.routing.session_store import InProcessSessions
from intent_router.types import Prediction, SessionId, SessionState

RAW: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG.read_text())
A, B = "kimi-k2.6", "kimi-k2.6-together"
SESSION = SessionId("f" * 64, "header")


class _Classifier:
    """Says ``intent`` at ``confidence`` for any text."""

    threshold = 0.8
    version = "test"

    def __init__(self) -> None:
        self.intent, self.confidence = "general", 0.95

    def predict(self, text: str) -> Prediction:
        rest = (1 - self.confidence) / (len(INTENTS) - 1)
        return Prediction(
            self.intent,
            self.confidence,
            {i: self.confidence if i == self.intent else rest for i in INTENTS},
        )

    def predict_batch(self, texts: list[str]) -> list[Prediction]:
        return [self.predict(t) for t in texts]


class _Fleet:
    """Answers as the deployment called; fails the deployments in ``down``; counts calls."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.calls: list[str] = []

    async def __call__(
        self, deployment: Deployment, request: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        self.calls.append(deployment.name)
        if deployment.name in self.down:
            raise ProviderError("unavailable", status=503)
        return {
            "id": "x",
            "choices": [{"message": {"role": "assistant", "content": "general"}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1},
        }


def _router(fleet: _Fleet, classifier: _Classifier, group: bool = False) -> Router:
    raw = copy.deepcopy(RAW)
    raw["router"]["confidence_threshold"] = 0.8
    if group:
        raw["deployments"][A].update(group="kimi")
        raw["deployments"][B].update(group="kimi")
    return Router(parse_config(raw), classifier, fleet)  # type: ignore[arg-type]


async def _turn(router: Router, text: str = "go on") -> tuple[str, str]:
    plan = await router.plan(Turn(text, session=SESSION))
    outcome = await router.chat({"messages": [{"role": "user", "content": text}]}, text, plan=plan)
    assert outcome.session is not None
    return outcome.result.deployment, outcome.session.outcome


async def test_a_session_sticks_to_the_group_member_that_answered_its_first_turn() -> None:
    router = _router(_Fleet(), _Classifier(), group=True)
    first, outcome = await _turn(router)
    assert outcome == "new" and first in (A, B)
    # Weighted 1:1, twenty free draws would reach both members; the session keeps its member.
    assert {await _turn(router) for _ in range(20)} == {(first, "stuck")}


async def test_a_cooling_down_deployment_falls_back_and_the_session_sticks_to_who_answered() -> (
    None
):
    fleet, classifier = _Fleet(), _Classifier()
    classifier.intent = "debugging"
    router = _router(fleet, classifier)
    assert await _turn(router) == ("claude-sonnet-4", "new")
    classifier.intent = "general"  # alone, Kimi's chain
    assert await _turn(router) == ("claude-sonnet-4", "stuck")
    router.cooldowns.cool_down("claude-sonnet-4", 60)
    assert await _turn(router) == ("gpt-4o", "switched")  # skipped: the chain's next answers
    assert await _turn(router) == ("gpt-4o", "stuck")  # and the session sticks to it
    fleet.down.add("gpt-4o")
    assert await _turn(router) == ("kimi-k2.6", "switched")  # a failure moves it on too
    assert fleet.calls[-2:] == ["gpt-4o", "kimi-k2.6"]
    fleet.down.clear()
    assert await _turn(router) == ("kimi-k2.6", "stuck")


async def test_a_live_session_turn_never_asks_the_llm_classifier() -> None:
    fleet, classifier = _Fleet(), _Classifier()
    router = _router(fleet, classifier)
    classifier.confidence = 0.3  # unsure: a turn outside a session asks the LLM classifier
    await router.route_turn(Turn("first", session=SESSION))  # /v1/route: stored at once
    assert fleet.calls == [router.config.llm_classifier]
    plan = await router.plan(Turn("yes do it", session=SESSION))
    assert fleet.calls == [router.config.llm_classifier] and plan.decision is not None
    assert plan.decision.source == "model"


async def test_a_sensitive_turn_goes_local_once_and_the_session_keeps_its_chain() -> None:
    router = _router(_Fleet(), _Classifier())
    await _turn(router)
    plan = await router.plan(Turn("here is my key", sensitive=True, session=SESSION))
    assert plan.chain == ("qwen-32b-local",) and plan.session is not None
    assert plan.session.choice.outcome == "switched" and "sensitive" in plan.session.choice.reason
    assert (await router.plan(Turn("go on", session=SESSION))).chain[0] == A


async def test_a_session_naming_a_deployment_no_longer_configured_starts_afresh() -> None:
    router = _router(_Fleet(), _Classifier())
    await router.sessions.put(SESSION.key, SessionState(("gone",), "gone", "general", 0.9, 3, 4e9))
    plan = await router.plan(Turn("go on", session=SESSION))
    assert plan.session is not None and plan.session.choice.outcome == "new" and plan.chain[0] == A


async def test_the_in_process_store_drops_the_least_recently_used_and_the_expired() -> None:
    now = [1000.0]
    store = InProcessSessions(2, grace_s=50, clock=lambda: now[0])
    state = SessionState(("a",), "a", "general", 0.9, 1, 1100.0)
    await store.put("one", state)
    await store.put("two", state)
    assert await store.get("one") == state  # "one" is now the most recently used
    await store.put("three", state)
    assert await store.get("two") is None and await store.get("one") == state and len(store) == 2
    now[0] = 1149.0  # expired, but kept a grace period: the turn is told it expired
    assert await store.get("one") == state
    now[0] = 1150.0
    assert await store.get("one") is None and len(store) == 1


async def test_a_budget_downgrade_is_a_turn_of_its_own_and_the_session_keeps_its_chain() -> None:
    fleet, classifier = _Fleet(), _Classifier()
    classifier.intent = "debugging"
    router = _router(fleet, classifier)
    await _turn(router)  # the session sticks to Claude
    cheaper = router.downgraded(await router.plan(Turn("go on", session=SESSION)))
    assert cheaper is not None and cheaper.session is not None and cheaper.prefer is None
    assert cheaper.chain == (A, B) and cheaper.session.choice.outcome == "switched"
    outcome = await router.chat(
        {"messages": [{"role": "user", "content": "go on"}]}, "go on", plan=cheaper
    )
    assert outcome.result.deployment == A and outcome.session is not None
    assert "over budget" in outcome.session.reason
    assert await _turn(router) == ("claude-sonnet-4", "stuck")


async def test_a_turn_after_the_ttl_is_told_its_session_expired_and_starts_afresh() -> None:
    import time

    router = _router(_Fleet(), _Classifier())
    idle = SessionState(
        ("claude-sonnet-4",), "claude-sonnet-4", "debugging", 0.9, 4, time.time() - 1
    )
    await router.sessions.put(SESSION.key, idle)  # past its TTL, within the store's grace
    plan = await router.plan(Turn("go on", session=SESSION))
    assert (
        plan.session is not None and plan.session.choice.outcome == "expired" and plan.chain[0] == A
    )
