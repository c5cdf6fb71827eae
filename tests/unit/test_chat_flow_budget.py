"""service/chat_flow.py ``budget_hold``: a chat request's hold is settled exactly once, at what
the request spent, whether it answered, failed, or handed the hold over to its stream (in-process
counters; the fleet tests in tests/integration/test_service_client_keys.py cover the sockets)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import pytest

from intent_router.config import load_config
from intent_router.exceptions import BudgetExceededError, ProviderError
from intent_router.governance.client_keys import ClientKey
from intent_router.governance.counters import InProcessCounters
from intent_router.governance.limits import Limits
from intent_router.router import Router
from intent_router.service.chat_flow import budget_hold
from intent_router.types import Plan

CONFIG = load_config()
PLAN = Plan(None, ("gpt-4o",))  # a named deployment: nothing classified, no escalation cost
BODY: dict[str, Any] = {
    "model": "gpt-4o",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "hi"}],
}


class _Classifier:  # a request naming its deployment is never classified
    threshold = 0.5


async def _no_call(*_: object) -> dict[str, Any]:
    raise AssertionError("a budget hold calls no provider")


ROUTER = Router(CONFIG, _Classifier(), _no_call)  # type: ignore[arg-type]
ESTIMATE = ROUTER.estimate_cost(PLAN.chain, BODY, "hi", None)


def _key(budget_day_usd: float | None = None) -> ClientKey:
    return ClientKey(
        id="key_flow",
        prefix="ir-flowtst",
        team="acme",
        name="ci",
        budget_day_usd=budget_day_usd,
        over_budget="refuse",
    )


async def test_a_hold_is_settled_at_what_the_answer_cost() -> None:
    limits = Limits(InProcessCounters())
    async with budget_hold(limits, ROUTER, _key(), PLAN, BODY, "hi") as held:
        assert held.hold is not None and held.estimate_usd == pytest.approx(
            ESTIMATE, abs=1e-6
        )  # micro-dollars
        held.spent_usd = 0.000125
    assert await limits.spend("key_flow") == {"day_usd": 0.000125, "month_usd": 0.000125}


async def test_a_request_that_fails_is_charged_nothing_and_frees_its_hold() -> None:
    limits = Limits(InProcessCounters())
    key = _key(budget_day_usd=ESTIMATE * 1.5)  # room for one hold at a time
    with pytest.raises(ProviderError):
        async with budget_hold(limits, ROUTER, key, PLAN, BODY, "hi"):
            raise ProviderError("upstream down", status=503)
    assert await limits.spend("key_flow") == {"day_usd": 0.0, "month_usd": 0.0}
    async with budget_hold(
        limits, ROUTER, key, PLAN, BODY, "hi"
    ) as again:  # the budget is whole again
        assert again.hold is not None


async def test_a_hold_handed_to_a_stream_is_settled_when_the_stream_ends_not_before() -> None:
    limits = Limits(InProcessCounters())
    key = _key(budget_day_usd=ESTIMATE * 1.5)
    async with AsyncExitStack() as handler:
        held = await handler.enter_async_context(budget_hold(limits, ROUTER, key, PLAN, BODY, "hi"))
        stream = handler.pop_all()
    with pytest.raises(BudgetExceededError):  # still held: the handler's exit settled nothing
        async with budget_hold(limits, ROUTER, key, PLAN, BODY, "hi"):
            pass
    held.spent_usd = 0.0005
    await stream.aclose()  # the stream ended
    assert await limits.spend("key_flow") == {"day_usd": 0.0005, "month_usd": 0.0005}


async def test_without_a_client_key_nothing_is_held() -> None:
    counters = InProcessCounters()
    async with budget_hold(Limits(counters), ROUTER, None, PLAN, BODY, "hi") as held:
        assert held.hold is None and held.plan is PLAN and not held.downgraded
        held.spent_usd = 1.0
    assert await Limits(counters).spend("key_flow") == {"day_usd": 0.0, "month_usd": 0.0}
