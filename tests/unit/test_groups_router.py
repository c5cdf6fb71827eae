"""The Router walks a model group's members by its strategy (the provider call is injected:
no HTTP here; the fleet test in tests/integration/test_service_groups.py covers the sockets)."""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from typing import Any

import yaml

from intent_router.config import DEFAULT_CONFIG, Deployment, parse_config
from intent_router.exceptions import ProviderError
from intent_router.router import Router

RAW: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG.read_text())
A, B = "kimi-k2.6", "kimi-k2.6-together"
REQUEST = {"model": A, "messages": [{"role": "user", "content": "hi"}]}


class _Classifier:  # a request naming its deployment is never classified
    threshold = 0.5


def _router(strategy: str, complete: Any, weights: tuple[float, float] = (1, 1)) -> Router:
    raw = copy.deepcopy(RAW)
    raw["deployments"][A].update(group="kimi", weight=weights[0])
    raw["deployments"][B].update(group="kimi", weight=weights[1])
    raw["router"]["groups"] = {"kimi": {"strategy": strategy}}
    return Router(parse_config(raw), _Classifier(), complete)  # type: ignore[arg-type]


def _answer(name: str) -> dict[str, Any]:
    return {
        "id": "x",
        "choices": [{"message": {"role": "assistant", "content": name}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1},
    }


async def test_least_in_flight_sends_a_new_request_to_the_idle_member() -> None:
    release = asyncio.Event()

    async def complete(
        deployment: Deployment, request: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        await release.wait()
        return _answer(deployment.name)

    router = _router("least_in_flight", complete)
    first = asyncio.create_task(router.chat(REQUEST, "hi", model=A))
    while not any(router.group_stats.in_flight(n) for n in (A, B)):
        await asyncio.sleep(0)
    busy = A if router.group_stats.in_flight(A) else B
    second = asyncio.create_task(router.chat(REQUEST, "hi", model=A))
    while router.group_stats.in_flight(A) + router.group_stats.in_flight(B) < 2:
        await asyncio.sleep(0)
    release.set()
    outcomes = await asyncio.gather(first, second)
    assert (
        outcomes[0].result.deployment == busy
        and outcomes[1].result.deployment == ({A, B} - {busy}).pop()
    )
    assert router.group_stats.in_flight(A) == router.group_stats.in_flight(B) == 0


async def test_lowest_latency_measures_each_member_then_prefers_the_faster() -> None:
    async def complete(
        deployment: Deployment, request: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        await asyncio.sleep(0.05 if deployment.name == A else 0)
        return _answer(deployment.name)

    router = _router("lowest_latency", complete)
    answered = Counter(
        [(await router.chat(REQUEST, "hi", model=A)).result.deployment for _ in range(12)]
    )
    assert answered == {A: 1, B: 11}  # A once (to be measured), then always the faster B


async def test_a_429_on_one_member_moves_to_the_other_and_cools_only_that_one() -> None:
    async def complete(
        deployment: Deployment, request: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        if deployment.name == A:
            raise ProviderError("rate limited", status=429, retry_after_s=30)
        return _answer(deployment.name)

    router = _router("weighted", complete, weights=(1, 0))  # weight 0: B only after A
    outcome = await router.chat(REQUEST, "hi", model=A)
    assert [(a.deployment, a.outcome) for a in outcome.result.attempts] == [
        (A, "failed"),
        (B, "ok"),
    ]
    assert not router.cooldowns.available(A) and router.cooldowns.available(B)
    again = await router.chat(
        REQUEST, "hi", model=A
    )  # A cools down: B answers, A is skipped unasked
    assert again.result.deployment == B
    assert [a.outcome for a in again.result.attempts] == ["ok"]
