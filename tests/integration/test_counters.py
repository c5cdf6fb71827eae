"""Rate limits and spend budgets behave the same in-process and on a real Redis."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from intent_router.governance.counters import (
    Counters,
    CountersUnavailable,
    InProcessCounters,
    RedisCounters,
    Reservation,
    make_counters,
    period_key,
    to_micros,
)
from tests.loop_lag import LoopLag

REDIS_URL = os.environ.get("INTENT_ROUTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# The tests of what is counted give Redis calls more than the 0.5 s default: a burst of 200
# reservations opening connections on a loaded CI runner can take longer to connect, and that
# is not what they test (the timeouts have tests of their own, on unreachable servers).
COUNTING_TIMEOUT_S = 5.0


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[misc]


NOON = utc(2026, 11, 29, 12, 0, 0)  # the start of a 60 s window


async def _delete_keys(prefix: str) -> None:
    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"test-counters:{uuid.uuid4().hex}:"
    yield prefix
    await _delete_keys(prefix)


@pytest.fixture(params=["in_process", "redis"])
async def counters(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[Counters]:
    backend: Counters
    if request.param == "redis":
        backend = RedisCounters(REDIS_URL, prefix=redis_prefix, timeout_s=COUNTING_TIMEOUT_S)
    else:
        backend = InProcessCounters()
    yield backend
    await backend.aclose()


@pytest.fixture
async def two_workers(redis_prefix: str) -> AsyncIterator[tuple[RedisCounters, RedisCounters]]:
    first, second = (
        RedisCounters(REDIS_URL, redis_prefix, timeout_s=COUNTING_TIMEOUT_S) for _ in range(2)
    )
    yield first, second
    await first.aclose()
    await second.aclose()


# Rate limits


async def test_rpm_allows_the_limit_then_refuses_until_the_next_window(counters: Counters) -> None:
    decisions = [await counters.hit("key-a:rpm", 5, now=NOON + 10) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True] * 5
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0]

    refused = await counters.hit("key-a:rpm", 5, now=NOON + 10)
    assert not refused.allowed and refused.remaining == 0
    assert refused.retry_after_s == pytest.approx(50.0)
    assert not (await counters.hit("key-a:rpm", 5, now=NOON + 59.9)).allowed

    fresh = await counters.hit("key-a:rpm", 5, now=NOON + 10 + refused.retry_after_s)
    assert fresh.allowed and fresh.remaining == 4 and fresh.retry_after_s == 0.0


@pytest.mark.parametrize("offset", [0.0, 0.001, 30.0, 59.999])
async def test_retry_after_is_positive_and_at_most_a_minute(
    counters: Counters, offset: float
) -> None:
    await counters.hit("key-b:rpm", 1, now=NOON + offset)
    refused = await counters.hit("key-b:rpm", 1, now=NOON + offset)
    assert not refused.allowed
    assert 0.0 < refused.retry_after_s <= 60.0
    assert refused.retry_after_s == pytest.approx(60.0 - offset, abs=1e-3)


async def test_tpm_counts_amounts_and_a_refused_hit_consumes_nothing(counters: Counters) -> None:
    assert (await counters.hit("key-c:tpm", 1000, amount=600, now=NOON)).remaining == 400
    refused = await counters.hit("key-c:tpm", 1000, amount=500, now=NOON + 1)
    assert not refused.allowed and refused.remaining == 400
    last = await counters.hit("key-c:tpm", 1000, amount=400, now=NOON + 2)
    assert last.allowed and last.remaining == 0


async def test_an_amount_above_the_limit_is_always_refused(counters: Counters) -> None:
    refused = await counters.hit("key-d:tpm", 1000, amount=1001, now=NOON)
    assert not refused.allowed and refused.remaining == 1000
    assert (await counters.hit("key-d:tpm", 1000, amount=1000, now=NOON)).allowed


async def test_keys_are_counted_separately(counters: Counters) -> None:
    assert (await counters.hit("key-e:rpm", 1, now=NOON)).allowed
    assert (await counters.hit("key-f:rpm", 1, now=NOON)).allowed
    assert not (await counters.hit("key-e:rpm", 1, now=NOON)).allowed


async def test_concurrent_hits_never_exceed_the_limit(counters: Counters) -> None:
    decisions = await asyncio.gather(*(counters.hit("key-g:rpm", 37, now=NOON) for _ in range(100)))
    assert sum(d.allowed for d in decisions) == 37


# Spend budgets


async def _reserve_then_commit(counters: Counters, actual_usd: float) -> bool:
    held = await counters.reserve("team-a", "day", 1.00, 0.013, now=NOON)
    if held is None:
        return False
    await asyncio.sleep(0)  # let the other requests interleave while this one is in flight
    await counters.commit(held, actual_usd)
    return True


async def test_concurrent_reservations_spend_the_budget_exactly(counters: Counters) -> None:
    results = await asyncio.gather(*(_reserve_then_commit(counters, 0.013) for _ in range(200)))
    assert sum(results) == 76  # floor(1.00 / 0.013)
    spent = await counters.spent("team-a", "day", now=NOON)
    assert to_micros(spent) == 76 * 13_000
    assert spent == 0.988
    assert await counters.reserve("team-a", "day", 1.00, 0.013, now=NOON) is None
    assert await counters.reserve("team-a", "day", 1.00, 0.012, now=NOON) is not None


async def test_a_smaller_actual_frees_budget_for_others(counters: Counters) -> None:
    first = await counters.reserve("team-b", "month", 1.00, 0.50, now=NOON)
    second = await counters.reserve("team-b", "month", 1.00, 0.50, now=NOON)
    assert first is not None and second is not None
    assert await counters.reserve("team-b", "month", 1.00, 0.000001, now=NOON) is None

    await counters.commit(first, 0.20)
    assert await counters.reserve("team-b", "month", 1.00, 0.30, now=NOON) is not None
    assert await counters.reserve("team-b", "month", 1.00, 0.000001, now=NOON) is None
    assert await counters.spent("team-b", "month", now=NOON) == 0.20


async def test_a_commit_sent_again_charges_once(redis_prefix: str) -> None:
    """A settle whose first commit timed out sends it again: Redis may have applied the first."""
    counters = RedisCounters(REDIS_URL, prefix=redis_prefix, timeout_s=COUNTING_TIMEOUT_S)
    try:
        held = await counters.reserve("team-again", "day", 1.00, 0.10, now=NOON)
        assert held is not None
        await counters.commit(held, 0.07)
        await counters.commit(held, 0.07)
        assert await counters.spent("team-again", "day", now=NOON) == 0.07
        other = await counters.reserve("team-again", "day", 1.00, 0.10, now=NOON)
        assert other is not None
        await counters.commit(other, 0.05)  # another reservation is charged as usual
        assert await counters.spent("team-again", "day", now=NOON) == 0.12
    finally:
        await counters.aclose()


async def test_a_released_reservation_spends_nothing(counters: Counters) -> None:
    held = await counters.reserve("team-c", "day", 0.10, 0.10, now=NOON)
    assert held is not None and held.estimate_usd == 0.10
    assert await counters.reserve("team-c", "day", 0.10, 0.01, now=NOON) is None
    await counters.release(held)
    assert await counters.spent("team-c", "day", now=NOON) == 0.0
    assert await counters.reserve("team-c", "day", 0.10, 0.10, now=NOON) is not None


async def test_an_expired_reservation_stops_counting_but_its_commit_still_charges(
    counters: Counters,
) -> None:
    crashed = await counters.reserve("team-d", "day", 1.00, 1.00, now=NOON)
    assert crashed is not None and crashed.expires_at == NOON + 300
    assert await counters.reserve("team-d", "day", 1.00, 0.01, now=NOON + 299) is None
    assert await counters.reserve("team-d", "day", 1.00, 0.01, now=NOON + 300) is not None
    await counters.commit(crashed, 0.40)  # a slow request, not a crashed one: the money is spent
    assert await counters.spent("team-d", "day", now=NOON) == 0.40


async def test_daily_budgets_roll_over_at_utc_midnight(counters: Counters) -> None:
    before, after = utc(2026, 11, 29, 23, 59, 59), utc(2026, 11, 30, 0, 0, 0)
    held = await counters.reserve("team-e", "day", 1.00, 1.00, now=before)
    assert held is not None and held.period_key == "2026-11-29"
    assert await counters.reserve("team-e", "day", 1.00, 0.01, now=before) is None
    assert await counters.reserve("team-e", "day", 1.00, 1.00, now=after) is not None
    await counters.commit(held, 0.70)  # charged to the day it was reserved in
    assert await counters.spent("team-e", "day", now=before) == 0.70
    assert await counters.spent("team-e", "day", now=after) == 0.0


async def test_monthly_budgets_roll_over_on_the_first(counters: Counters) -> None:
    november, december = utc(2026, 11, 30, 23, 0, 0), utc(2026, 12, 1, 0, 0, 0)
    held = await counters.reserve("team-f", "month", 5.00, 5.00, now=november)
    assert held is not None and held.period_key == "2026-11"
    await counters.commit(held, 5.00)
    assert await counters.reserve("team-f", "month", 5.00, 0.01, now=utc(2026, 11, 1)) is None
    assert await counters.reserve("team-f", "month", 5.00, 5.00, now=december) is not None
    assert await counters.spent("team-f", "month", now=december) == 0.0


async def test_a_zero_budget_refuses_everything_that_costs(counters: Counters) -> None:
    assert await counters.reserve("team-g", "day", 0.0, 0.000001, now=NOON) is None
    assert await counters.reserve("team-g", "day", 0.0, 0.0, now=NOON) is not None


async def test_bad_arguments_are_rejected(counters: Counters) -> None:
    with pytest.raises(ValueError, match="period"):
        await counters.reserve("team-h", "week", 1.0, 0.1, now=NOON)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=">= 0"):
        await counters.reserve("team-h", "day", 1.0, -0.1, now=NOON)
    with pytest.raises(ValueError, match=">= 0"):
        await counters.hit("key-h", 10, amount=-1, now=NOON)


def test_period_keys_are_utc_calendar_days_and_months() -> None:
    late = utc(2026, 12, 31, 23, 59, 59)
    assert (period_key("day", late), period_key("month", late)) == ("2026-12-31", "2026-12")
    assert period_key("day", late + 1) == "2027-01-01"


# Several workers on one Redis


async def test_two_workers_share_budgets_without_overspending(
    two_workers: tuple[RedisCounters, RedisCounters],
) -> None:
    first, second = two_workers
    results = await asyncio.gather(
        *(_reserve_then_commit(first if i % 2 else second, 0.013) for i in range(200))
    )
    assert sum(results) == 76
    for worker in two_workers:
        assert to_micros(await worker.spent("team-a", "day", now=NOON)) == 76 * 13_000


async def test_two_workers_share_rate_limits(
    two_workers: tuple[RedisCounters, RedisCounters],
) -> None:
    first, second = two_workers
    decisions = await asyncio.gather(
        *((first if i % 2 else second).hit("key-i:rpm", 7, now=NOON) for i in range(40))
    )
    assert sum(d.allowed for d in decisions) == 7


async def test_reservations_and_commits_cross_workers(
    two_workers: tuple[RedisCounters, RedisCounters],
) -> None:
    first, second = two_workers
    held = await first.reserve("team-j", "day", 1.00, 0.60, now=NOON)
    assert held is not None
    assert await second.reserve("team-j", "day", 1.00, 0.60, now=NOON) is None
    await second.commit(held, 0.10)
    assert await second.reserve("team-j", "day", 1.00, 0.60, now=NOON) is not None
    assert await first.spent("team-j", "day", now=NOON) == 0.10


# Redis unavailable


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.mark.parametrize("where", ["refused", "silent"])
async def test_unreachable_redis_raises_counters_unavailable_quickly(
    where: str, silent_port: int
) -> None:
    port = 1 if where == "refused" else silent_port
    counters = RedisCounters(f"redis://127.0.0.1:{port}/0")
    try:
        for call in (
            lambda: counters.hit("key", 10),
            lambda: counters.reserve("team", "day", 1.0, 0.1),
            lambda: counters.spent("team", "day"),
        ):
            async with LoopLag() as lag:
                started = time.monotonic()
                with pytest.raises(CountersUnavailable, match=f"127.0.0.1:{port}"):
                    await call()
                took = time.monotonic() - started
            # A whole call's deadline (3 x the 0.5 s socket timeout), plus this loop's lateness.
            assert took < 1.5 + lag.worst_s + 0.5, (took, lag.worst_s)
    finally:
        await counters.aclose()


def test_make_counters_picks_the_backend_from_the_url() -> None:
    assert isinstance(make_counters(None), InProcessCounters)
    assert isinstance(make_counters(""), InProcessCounters)
    assert isinstance(make_counters(REDIS_URL), RedisCounters)


# Property: reservations never let spend exceed the budget

BUDGET_MICROS = 1_000_000
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.integers(0, 400_000)),
        st.tuples(st.just("commit"), st.integers(0, 50), st.floats(0.0, 1.0)),
        st.tuples(st.just("release"), st.integers(0, 50)),
        st.tuples(st.just("wait"), st.floats(0.0, 200.0)),
    ),
    max_size=40,
)


async def _replay(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    counters, now, spent = InProcessCounters(), NOON, 0
    live: list[Reservation] = []
    for op in ops:
        live = [held for held in live if held.expires_at > now]  # expired: its request crashed
        if op[0] == "reserve":
            fits = spent + sum(h.amount_micros for h in live) + op[1] <= BUDGET_MICROS
            held = await counters.reserve("team", "day", 1.0, op[1] / 1e6, now=now)
            assert (held is not None) == fits
            live += [held] if held else []
        elif op[0] == "wait":
            now += op[1]
        elif live:
            held = live.pop(op[1] % len(live))
            if op[0] == "release":
                await counters.release(held)
            else:
                actual = int(held.amount_micros * op[2])  # actuals never exceed estimates
                await counters.commit(held, actual / 1e6)
                spent += actual
        assert to_micros(await counters.spent("team", "day", now=now)) == spent
        assert spent + sum(h.amount_micros for h in live) <= BUDGET_MICROS


@settings(max_examples=150, deadline=None)
@given(_ops)
def test_spend_and_live_reservations_never_exceed_the_budget(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    asyncio.run(_replay(ops))
