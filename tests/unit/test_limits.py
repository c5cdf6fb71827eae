"""Client-key limits over in-process counters: rate limits, budget holds, downgrade policy."""

from __future__ import annotations

import asyncio

import pytest

from intent_router.config import load_config
from intent_router.exceptions import (
    BudgetExceededError,
    CountersUnavailable,
    InvalidRequestError,
    RateLimitedError,
)
from intent_router.governance.client_keys import ClientKey, KeyLimits, hash_key, new_key
from intent_router.governance.counters import InProcessCounters
from intent_router.governance.limits import BudgetHold, Limits
from intent_router.routing.overrides import EffectiveOverride
from intent_router.routing.policy import downgrade_chain


def key(**limits: object) -> ClientKey:
    return ClientKey(id="key_test", prefix="ir-abcdefg", team="acme", name="ci", **limits)  # type: ignore[arg-type]


async def test_rpm_admits_the_limit_then_answers_429_with_a_retry_after() -> None:
    limits = Limits(InProcessCounters())
    k = key(rpm=3)
    for _ in range(3):
        await limits.admit(k)
    with pytest.raises(RateLimitedError) as refused:
        await limits.admit(k)
    assert refused.value.code == "rate_limit_exceeded" and 0 < refused.value.retry_after_s <= 60
    assert "ir-abcdefg" in str(refused.value) and "3 requests per minute" in str(refused.value)


async def test_tpm_counts_tokens_and_a_request_larger_than_the_limit_is_refused_outright() -> None:
    limits = Limits(InProcessCounters())
    k = key(tpm=1000)
    await limits.admit(k, tokens=600)
    with pytest.raises(RateLimitedError, match="tokens per minute"):
        await limits.admit(k, tokens=600)
    await limits.admit(k, tokens=400)  # the refused hit consumed nothing
    with pytest.raises(RateLimitedError, match="more than client key"):
        await limits.admit(k, tokens=1001)


async def test_holds_are_settled_at_the_real_cost_and_spend_is_exact() -> None:
    limits = Limits(InProcessCounters())
    k = key(budget_day_usd=1.0, budget_month_usd=10.0)
    holds = [await limits.hold(k, 0.013) for _ in range(76)]
    assert all(isinstance(h, BudgetHold) for h in holds)
    for h in holds:
        await limits.settle(h, 0.013)  # type: ignore[arg-type]
    assert await limits.spend("key_test") == {"day_usd": 0.988, "month_usd": 0.988}
    refused = await limits.hold(k, 0.013)
    assert isinstance(refused, BudgetExceededError) and "day budget ($1)" in str(refused)
    assert 0 < refused.retry_after_s <= 86_400  # until the UTC day ends


async def test_a_month_refusal_releases_the_day_hold() -> None:
    counters = InProcessCounters()
    limits = Limits(counters)
    k = key(budget_day_usd=5.0, budget_month_usd=0.5)
    refused = await limits.hold(k, 0.6)
    assert isinstance(refused, BudgetExceededError) and "month budget" in str(refused)
    assert refused.retry_after_s > 0
    assert isinstance(await limits.hold(k, 0.5), BudgetHold)
    # The refused request holds nothing against the day: 5.0 - 0.5 is still free there.
    assert await counters.reserve("key:key_test", "day", 5.0, 4.5) is not None
    assert await counters.reserve("key:key_test", "day", 5.0, 0.000001) is None


async def test_a_key_without_budgets_is_still_metered() -> None:
    limits = Limits(InProcessCounters())
    hold = await limits.hold(key(), 12.5)
    assert isinstance(hold, BudgetHold)
    await limits.settle(hold, 2.25)
    assert await limits.spend("key_test") == {"day_usd": 2.25, "month_usd": 2.25}


async def test_concurrent_holds_never_exceed_the_budget() -> None:
    limits = Limits(InProcessCounters())
    k = key(budget_day_usd=0.1)

    async def one() -> bool:
        hold = await limits.hold(k, 0.007)
        if not isinstance(hold, BudgetHold):
            return False
        await asyncio.sleep(0)
        await limits.settle(hold, 0.007)
        return True

    admitted = sum(await asyncio.gather(*(one() for _ in range(50))))
    assert admitted == 14  # floor(0.1 / 0.007): every request that fits, none more
    assert (await limits.spend("key_test"))["day_usd"] == pytest.approx(0.098, abs=1e-9)


def test_keys_are_random_and_only_their_hash_is_kept() -> None:
    first, second = new_key(), new_key()
    assert first != second and first.startswith("ir-") and len(first) >= 40
    assert hash_key(first) != hash_key(second) and len(hash_key(first)) == 64
    assert first not in hash_key(first)


@pytest.mark.parametrize(
    "limits", [dict(budget_day_usd=-1.0), dict(rpm=0), dict(tpm=-5), dict(over_budget="maybe")]
)
def test_key_limits_are_validated(limits: dict) -> None:
    with pytest.raises(InvalidRequestError):
        KeyLimits(**limits)


def test_downgrade_chain_is_the_tier_minus_what_is_forbidden_and_local_when_sensitive() -> None:
    config = load_config()
    assert downgrade_chain(config, "primary") == ("kimi-k2.6", "kimi-k2.6-together")
    forbid = EffectiveOverride(forbid_deployments=frozenset({"kimi-k2.6"}), applied=("org:acme",))
    assert downgrade_chain(config, "primary", override=forbid) == ("kimi-k2.6-together",)
    assert downgrade_chain(config, "primary", sensitive=True) == ("qwen-32b-local",)
    forbid_all = EffectiveOverride(
        forbid_providers=frozenset({"cloudflare", "together_ai"}), applied=("org:acme",)
    )
    assert downgrade_chain(config, "primary", override=forbid_all) == ()


class _CommitTimesOutOnce(InProcessCounters):
    """Counters whose first commit of each reservation fails as a Redis timeout would."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def commit(self, reservation, actual_usd: float) -> None:  # type: ignore[no-untyped-def]
        if self.failures > 0:
            self.failures -= 1
            raise CountersUnavailable("Redis counters at test failed during commit: TimeoutError")
        await super().commit(reservation, actual_usd)


@pytest.mark.parametrize(("failures", "charged"), [(1, 2.25), (2, 2.25), (3, 0.0)])
async def test_a_settle_tries_again_when_the_counters_do_not_answer(
    failures: int, charged: float
) -> None:
    limits = Limits(_CommitTimesOutOnce(0))
    hold = await limits.hold(key(), 12.5)
    assert isinstance(hold, BudgetHold) and len(hold.reservations) == 2  # a day and a month
    limits.counters.failures = failures  # type: ignore[attr-defined]
    await limits.settle(hold, 2.25)  # never raises: the answer has been given
    spend = await limits.spend("key_test")
    # Three attempts in all per reservation; the day's exhausts the failures first.
    assert spend["day_usd"] == charged and spend["month_usd"] == 2.25
