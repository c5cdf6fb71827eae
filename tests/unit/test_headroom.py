"""The ``headroom`` group strategy: per-minute usage against rpm/tpm limits, the order it gives,
the Router counting what it sends, and usage shared between workers through the counters."""

from __future__ import annotations

import copy
import random
from collections import Counter
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from intent_router.config import DEFAULT_CONFIG, ConfigError, Deployment, parse_config
from intent_router.exceptions import CountersUnavailable
from intent_router.governance.counters import InProcessCounters
from intent_router.router import Router
from intent_router.routing.groups import Member, order_members
from intent_router.routing.headroom import MinuteUsage, headroom
from intent_router.routing.shared_usage import SharedUsage

RAW: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG.read_text())
A, B = "kimi-k2.6", "kimi-k2.6-together"
REQUEST = {"model": A, "messages": [{"role": "user", "content": "hi"}]}


class _Classifier:  # a request naming its deployment is never classified
    threshold = 0.5


class _Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _config(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    raw = copy.deepcopy(RAW)
    raw["deployments"][A].update(group="kimi", **a)
    raw["deployments"][B].update(group="kimi", **b)
    raw["router"]["groups"] = {"kimi": {"strategy": "headroom"}}
    return raw


def test_headroom_is_the_smaller_share_left_of_the_limits_set() -> None:
    assert headroom(10, 500, rpm=100, tpm=1000) == pytest.approx(0.5)  # tokens are the tighter
    assert headroom(90, 0, rpm=100, tpm=None) == pytest.approx(0.1)
    assert headroom(120, 0, rpm=100, tpm=None) == pytest.approx(-0.2)  # over: below 0
    assert headroom(5, 5, rpm=None, tpm=None) is None


def test_usage_counts_this_minute_only() -> None:
    clock = _Clock(60 * 1000 + 10)
    usage = MinuteUsage(clock)
    usage.add(A, requests=1, tokens=100)
    usage.add(A, requests=1, tokens=50)
    assert usage.used(A) == (2, 150) and usage.used(B) == (0, 0)
    clock.now += 55  # the next UTC minute
    assert usage.used(A) == (0, 0)


def test_every_workers_totals_replace_the_local_count_plus_what_is_not_published() -> None:
    clock = _Clock(60 * 1000 + 10)
    usage = MinuteUsage(clock)
    usage.add(A, requests=3, tokens=30)
    assert usage.take_pending() == {A: (1000, 3, 30)}
    usage.apply_shared(A, 1000, requests=10, tokens=100)  # everyone's, these 3 included
    usage.add(A, requests=1, tokens=5)
    assert usage.used(A) == (11, 105)
    usage.put_back({A: (1000, 2, 20), B: (999, 1, 1)})  # an unpublished count comes back
    assert usage.take_pending() == {A: (1000, 3, 25), B: (999, 1, 1)}


def test_the_member_with_the_most_headroom_goes_first_and_cooling_ones_last() -> None:
    members = [
        Member("a", headroom=0.2),
        Member("b", headroom=0.9),
        Member("c", headroom=-0.1),
        Member("d", headroom=1.0, available=False),
    ]
    assert order_members(members, "headroom", random.Random(0)) == ("b", "a", "c", "d")


@given(
    st.lists(st.integers(1, 500), min_size=2, max_size=4),
    st.integers(0, 1500),
    st.integers(0, 2**32),
)
def test_taking_the_most_headroom_fills_members_in_proportion_to_their_limits(
    limits: list[int], requests: int, seed: int
) -> None:
    rng, used = random.Random(seed), [0] * len(limits)
    names = [str(i) for i in range(len(limits))]
    for _ in range(requests):
        members = [
            Member(n, headroom=headroom(used[i], 0, limits[i], None)) for i, n in enumerate(names)
        ]
        used[int(order_members(members, "headroom", rng)[0])] += 1
    shares = [u / limit for u, limit in zip(used, limits)]
    assert max(shares) - min(shares) <= max(1 / limit for limit in limits) + 1e-9


async def test_the_router_counts_each_request_and_its_tokens_against_the_members_limits() -> None:
    async def complete(
        deployment: Deployment, request: dict[str, Any], timeout: float
    ) -> dict[str, Any]:
        return {
            "id": "x",
            "choices": [{"message": {"role": "assistant", "content": "ok"}}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 60},
        }

    router = Router(parse_config(_config({"rpm": 30}, {"rpm": 10})), _Classifier(), complete)  # type: ignore[arg-type]
    router.usage = MinuteUsage(_Clock())  # one minute throughout
    answered = Counter(
        [(await router.chat(REQUEST, "hi", model=A)).result.deployment for _ in range(40)]
    )
    assert answered == {A: 30, B: 10}  # both full at once: 30:10 is their limits' ratio
    requests, tokens = router.usage.used(A)
    assert requests == 30 and tokens == 30 * 100  # the answers' usage, not the estimate
    assert router.headroom(A) == pytest.approx(0.0) and router.headroom(B) == pytest.approx(0.0)


def test_a_headroom_group_needs_limits_on_every_member() -> None:
    with pytest.raises(ConfigError, match=r"deployments\.kimi-k2\.6-together\.rpm"):
        parse_config(_config({"rpm": 30}, {}))
    with pytest.raises(ConfigError, match=r"deployments\.kimi-k2\.6\.tpm"):
        parse_config(_config({"tpm": 0}, {"tpm": 10}))
    assert parse_config(_config({"tpm": 1000}, {"rpm": 5})).deployments[A].tpm == 1000


class _Down:
    async def hit(self, *args: Any, **kwargs: Any) -> Any:
        raise CountersUnavailable("down")


async def test_two_workers_sharing_counters_see_each_others_usage_and_keep_it_while_they_are_down() -> (
    None
):
    clock = _Clock(60 * 1000 + 10)
    counters = InProcessCounters()  # what two workers on one Redis share (tests/integration: Redis)
    here, there = MinuteUsage(clock), MinuteUsage(clock)
    sync_here = SharedUsage(here, counters, [A, B], clock=clock)
    sync_there = SharedUsage(there, counters, [A, B], clock=clock)
    here.add(A, requests=2, tokens=200)
    there.add(A, requests=1, tokens=10)
    assert (
        await sync_here.sync_once() and await sync_there.sync_once() and await sync_here.sync_once()
    )
    assert here.used(A) == there.used(A) == (3, 210)
    down = SharedUsage(there, _Down(), [A, B], clock=clock)
    there.add(B, requests=5)
    assert not await down.sync_once()
    assert there.used(B) == (5, 0)  # still counted here
    assert await sync_there.sync_once() and await sync_here.sync_once()
    assert here.used(B) == (5, 0)  # published once the counters answered again
