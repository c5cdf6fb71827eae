"""Cooldowns shared through the real Redis: one worker's 429 with Retry-After keeps every
worker off that deployment, without any request waiting on Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from redis import Redis

from intent_router.governance.counters import RedisCounters
from intent_router.routing.cooldown import CooldownTracker
from intent_router.routing.headroom import MinuteUsage
from intent_router.routing.shared_cooldowns import SharedCooldowns
from intent_router.routing.shared_usage import SharedUsage
from tests.eventually import eventually, eventually_async
from tests.fakes.provider_fleet import FakeProvider, Reply, Status
from tests.integration.fleet_service import KEYS, fake_fleet, fleet_config
from tests.integration.service_process import free_port, running_services

REDIS_URL = "redis://127.0.0.1:6379/0"
MEMBERS = ("kimi-k2.6", "kimi-k2.6-together")  # the group kimi, where a test forms one


@dataclass
class Pair:
    """Two services over one fleet, sharing Redis under one prefix; ``http`` asks them."""

    a: str
    b: str
    fakes: dict[str, FakeProvider]
    prefix: str
    http: httpx.Client


@pytest.fixture(scope="module")
def headroom_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Two services whose kimi deployments form a headroom group (1,000 tpm each), gpt-4o
    and claude-sonnet-4 on their own: shared by the tests that use distinct deployments (a
    test's cooldown or usage is not another's), since a pair's start costs seconds of CPU."""
    with ExitStack() as stack:
        fakes = stack.enter_context(fake_fleet())
        prefix = f"test-{uuid.uuid4().hex[:8]}:"
        config = fleet_config(
            tmp_path_factory.mktemp("headroom-pair"),
            fakes,
            deployments={name: {"group": "kimi", "tpm": 1000} for name in MEMBERS},
            litellm=False,
            router={"groups": {"kimi": {"strategy": "headroom"}}},
            extra={"governance": {"redis_prefix": prefix}},
        )
        a, b = stack.enter_context(
            running_services(2, config, env={**KEYS, "INTENT_ROUTER_REDIS_URL": REDIS_URL})
        )
        # One client for all the requests: loopback.post() builds a client, and its TLS context,
        # per call (tens of milliseconds of CPU each).
        yield Pair(a, b, fakes, prefix, stack.enter_context(httpx.Client(timeout=30)))


def _reset(pair: Pair) -> Pair:
    for fake in pair.fakes.values():
        fake.reset()
    return pair


async def test_a_cooldown_started_on_one_worker_reaches_the_others() -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    here, there = CooldownTracker(3, 30), CooldownTracker(3, 30)
    first = SharedCooldowns(here, REDIS_URL, ["kimi", "gpt"], prefix, interval_s=0.05)
    second = SharedCooldowns(there, REDIS_URL, ["kimi", "gpt"], prefix, interval_s=0.05)
    first.start()
    second.start()
    try:
        here.record_failure("kimi", retry_after_s=20)

        async def kimi_cooled_there() -> bool:
            return not there.available("kimi")

        await eventually_async(
            kimi_cooled_there, timeout_s=10, interval_s=0.02, what="kimi's cooldown shared"
        )
        assert there.available("gpt")
        assert 18 < there.remaining_s("kimi") <= 20  # the same end, not a fresh 20 s
        # Repeated failures trip the configured cooldown; a shorter one never shortens it.
        there.record_failure("gpt", retry_after_s=1)
        here.record_failure("gpt", retry_after_s=5)
        await asyncio.sleep(0.3)
        assert 4 < here.remaining_s("gpt") <= 5 and 4 < there.remaining_s("gpt") <= 5
    finally:
        await first.aclose()
        await second.aclose()


async def test_without_redis_cooldowns_stay_local_and_nothing_raises() -> None:
    tracker = CooldownTracker(3, 30)
    shared = SharedCooldowns(
        tracker, f"redis://127.0.0.1:{free_port()}/0", ["kimi"], interval_s=0.05
    )
    shared.start()
    try:
        tracker.record_failure("kimi", retry_after_s=10)
        await asyncio.sleep(0.2)
        assert not tracker.available("kimi")
        await shared.sync_once()  # Redis refuses: kept for the next tick, no exception
    finally:
        await shared.aclose()


def _wait_until_every_service_read_it(key: str, services: int, timeout_s: float = 30) -> None:
    """Until ``key`` is in Redis and then ``services`` distinct connections have read it (each
    service reads every cooldown key with one MGET every 0.5 s): a condition, not a sleep that
    a loaded machine outlasts."""
    redis = Redis.from_url(REDIS_URL)
    deadline = time.monotonic() + timeout_s
    try:
        eventually(
            lambda: redis.exists(key), timeout_s=timeout_s, interval_s=0.02, what=f"{key} published"
        )
        readers: set[tuple[str, str]] = set()
        with redis.monitor() as monitor:  # every command from now on: all read after the publish
            while len(readers) < services:
                assert time.monotonic() < deadline, f"only {len(readers)} services read {key}"
                seen = monitor.next_command()
                if seen["command"].upper().startswith("MGET") and key in seen["command"]:
                    readers.add((seen["client_address"], seen["client_port"]))
    finally:
        redis.close()


def test_two_services_skip_a_deployment_the_other_saw_rate_limited(headroom_pair: Pair) -> None:
    s = _reset(headroom_pair)
    s.fakes["gpt"].script(Status(429, retry_after=30))
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]}
    first = s.http.post(f"{s.a}/v1/chat/completions", json=body)
    assert first.headers["x-intent-router-deployment"] == "claude-sonnet-4"
    _wait_until_every_service_read_it(f"{s.prefix}cooldown:gpt-4o", services=2)
    second = s.http.post(f"{s.b}/v1/chat/completions", json=body)
    assert second.status_code == 200
    assert second.headers["x-intent-router-deployment"] == "claude-sonnet-4"
    assert len(s.fakes["gpt"].requests) == 1  # b never called the rate-limited deployment


def test_two_services_agree_on_a_group_members_cooldown(tmp_path: Path) -> None:
    group = {
        "kimi-k2.6": {"group": "kimi"},
        "kimi-k2.6-together": {"group": "kimi"},
    }  # weighted 1:1
    with ExitStack() as stack:
        fakes = stack.enter_context(fake_fleet())
        prefix = f"test-{uuid.uuid4().hex[:8]}:"
        config = fleet_config(
            tmp_path,
            fakes,
            deployments=group,
            litellm=False,
            router={"cooldown": {"failures": 1000, "seconds": 60}},
            extra={"governance": {"redis_prefix": prefix}},
        )
        a, b = stack.enter_context(
            running_services(2, config, env={**KEYS, "INTENT_ROUTER_REDIS_URL": REDIS_URL})
        )
        fakes["together"].script(Status(429, "slow down on this key", retry_after=60))
        body = {"model": "kimi-k2.6", "messages": [{"role": "user", "content": "hello"}]}
        # One client for all the requests: loopback.post() builds a client, and its TLS context,
        # per call (tens of milliseconds of CPU each, over a hundred calls here).
        http = stack.enter_context(httpx.Client(timeout=30))
        for _ in range(100):  # until a's random order tries Together first (p = 0.5)
            answer = http.post(f"{a}/v1/chat/completions", json=body)
            assert (
                answer.status_code == 200
                and answer.headers["x-intent-router-deployment"] == "kimi-k2.6"
            )
            if fakes["together"].requests:
                break
        assert len(fakes["together"].requests) == 1
        _wait_until_every_service_read_it(f"{prefix}cooldown:kimi-k2.6-together", services=2)
        for _ in range(60):  # b never saw the 429: without the shared cooldown half would go there
            answer = http.post(f"{b}/v1/chat/completions", json=body)
            assert answer.headers["x-intent-router-deployment"] == "kimi-k2.6"
            assert answer.headers["x-intent-router-attempts"] == "1"
        assert len(fakes["together"].requests) == 1


async def test_two_workers_read_each_others_deployment_usage_through_redis() -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    here_counters, there_counters = (
        RedisCounters(REDIS_URL, prefix),
        RedisCounters(REDIS_URL, prefix),
    )

    def clock() -> float:  # one minute throughout (Redis expires the keys relative to now)
        return 1_800_000_010.0

    here, there = MinuteUsage(clock), MinuteUsage(clock)
    try:
        here.add("kimi", requests=2, tokens=300)
        there.add("kimi", requests=1, tokens=50)
        there.add("gpt", requests=4)
        for usage, counters in (
            (here, here_counters),
            (there, there_counters),
            (here, here_counters),
        ):
            assert await SharedUsage(usage, counters, ["kimi", "gpt"], clock=clock).sync_once()
        assert here.used("kimi") == there.used("kimi") == (3, 350)
        assert here.used("gpt") == there.used("gpt") == (4, 0)
    finally:
        await here_counters.aclose()
        await there_counters.aclose()


def _every_service_read_usage(
    prefix: str, member: str, at_least: int, services: int, minute: int, timeout_s: float = 30
) -> bool:
    """Until ``member``'s tokens in UTC ``minute`` reach ``at_least`` in Redis and then
    ``services`` distinct connections have read them (each service's usage task reads every
    0.5 s, on one connection: no client keys here): a condition, not a sleep. False as soon as
    ``minute`` is over (its counts no longer matter to anyone)."""
    redis = Redis.from_url(REDIS_URL, decode_responses=True)
    deadline = time.monotonic() + timeout_s
    key = f"{prefix}rate:{minute}:deployment-tokens:{member}"
    try:
        while int(redis.get(key) or 0) < at_least:
            if _utc_minute() != minute:
                return False
            assert time.monotonic() < deadline, f"{key} never reached {at_least}"
            time.sleep(0.02)
        readers: set[tuple[str, str]] = set()
        with redis.monitor() as monitor:  # every command from now on: all read after the publish
            while len(readers) < services:
                if _utc_minute() != minute:
                    return False
                assert time.monotonic() < deadline, f"only {len(readers)} services read {key}"
                seen = monitor.next_command()
                words = seen["command"].split()
                if words[0].upper() == "EVALSHA" and key in words and words[-2] == "0":  # a read
                    readers.add((seen["client_address"], seen["client_port"]))
        return True
    finally:
        redis.close()


def _utc_minute() -> int:
    """The UTC minute usage is counted in now (as the services count it: same clock)."""
    return int(time.time() // 60)


def _heavy_on_a_then_b_eight_times(s: Pair) -> tuple[str, list[str]] | None:
    """``a`` serves one request reporting 900 cached tokens, then ``b`` eight once both
    services read that usage: the member ``a`` did not pick, and which member answered each of
    ``b``'s. None if a UTC minute ended meanwhile: usage is counted per minute, and what ``b``
    saw then depends on which minute each request was counted in."""
    minute = _utc_minute()
    _reset(s)
    for fake in ("kimi", "together"):  # whichever a picks reports 900 cached tokens: 90% of its tpm
        s.fakes[fake].script(Reply(cached_tokens=900))
    body = {"model": "kimi-k2.6", "messages": [{"role": "user", "content": "hello"}]}
    heavy = s.http.post(f"{s.a}/v1/chat/completions", json=body).headers[
        "x-intent-router-deployment"
    ]
    light = ({*MEMBERS} - {heavy}).pop()
    _reset(s)
    if not _every_service_read_usage(s.prefix, heavy, 900, services=2, minute=minute):
        return None
    # b never served the heavy request; alone it would alternate (both members at 100%).
    answered = [
        s.http.post(f"{s.b}/v1/chat/completions", json=body).headers["x-intent-router-deployment"]
        for _ in range(8)
    ]
    return (light, answered) if _utc_minute() == minute else None


def test_two_services_order_a_headroom_group_by_their_shared_usage(headroom_pair: Pair) -> None:
    """The exchange takes about a second: rather than wait before it for a minute with time
    enough left (up to 30 s asleep), it runs at once and, in the rare case a minute ended
    during it, again at the start of the next minute (which no earlier request was counted in)."""
    ran = _heavy_on_a_then_b_eight_times(headroom_pair)
    if ran is None:  # the minute turned during the run (about a second long: rarely)
        time.sleep(60 - time.time() % 60 + 0.05)  # into a minute no request was counted in
        ran = _heavy_on_a_then_b_eight_times(headroom_pair)
    assert ran is not None, "both runs straddled a UTC minute"
    light, answered = ran
    assert answered == [light] * 8
