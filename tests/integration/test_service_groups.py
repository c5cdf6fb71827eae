"""Model groups over real sockets: the two Kimi deployments (Cloudflare and Together fakes)
form the group ``kimi`` with weights 3 and 1; a request for ``kimi-k2.6`` is spread over them."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests import loopback
from tests.fakes.provider_fleet import Reply, Status
from tests.integration.fleet_service import Setup, SharedFleets

GROUP = {
    "kimi-k2.6": {"group": "kimi", "weight": 3},
    "kimi-k2.6-together": {"group": "kimi", "weight": 1},
}
BODY = {"model": "kimi-k2.6", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


@pytest.fixture(scope="module")
def fleets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedFleets]:
    with SharedFleets(tmp_path_factory.mktemp("groups")) as shared:
        yield shared


def _spread(fleets: SharedFleets, **router: Any) -> Setup:
    # cooldown.failures 1000: no test of this configuration trips a cooldown by counting
    return fleets.get(
        router={"cooldown": {"failures": 1000, "seconds": 60}, **router},
        deployments=GROUP,
        litellm=False,
    )


def _answered(setup: Setup, requests: int, clients: int = 16) -> Counter[str]:
    """Which deployment answered each of ``requests`` chats, sent by ``clients`` at once (one by
    one, 2,000 take a minute); every one must succeed."""
    answered: Counter[str] = Counter()

    async def send(client: httpx.AsyncClient, count: int) -> None:
        for _ in range(count):
            response = await client.post("/v1/chat/completions", json=BODY)
            assert response.status_code == 200
            answered[response.headers["x-intent-router-deployment"]] += 1

    async def send_all() -> None:
        async with httpx.AsyncClient(base_url=setup.url, timeout=30) as client:
            share, rest = divmod(requests, clients)
            await asyncio.gather(*(send(client, share + (i < rest)) for i in range(clients)))

    asyncio.run(send_all())
    assert sum(answered.values()) == requests
    return answered


def test_the_spread_over_2000_requests_matches_the_weights(fleets: SharedFleets) -> None:
    setup = _spread(fleets)
    answered = _answered(setup, 2000)
    assert set(answered) == {"kimi-k2.6", "kimi-k2.6-together"}
    # Expected 0.75; the standard error over 2,000 draws is ~0.97 points: +-4 points is > 4 sigma.
    assert abs(answered["kimi-k2.6"] / 2000 - 0.75) < 0.04
    assert (
        setup.calls("kimi") == answered["kimi-k2.6"]
        and setup.calls("together") == answered["kimi-k2.6-together"]
    )
    assert setup.calls("claude") == 0  # the chain's next entry is never needed


def test_a_429_on_one_member_moves_to_the_other_member_first(fleets: SharedFleets) -> None:
    setup = _spread(fleets)
    setup.fakes["kimi"].script(Status(429, "rate limited on this key"))
    with httpx.Client(base_url=setup.url, timeout=30) as client:
        for _ in range(200):  # until the weighted order tries the failing key first (p = 0.75)
            response = client.post("/v1/chat/completions", json=BODY)
            assert response.status_code == 200
            if response.headers["x-intent-router-attempts"] == "2":
                break
        else:
            pytest.fail("the scripted 429 was never reached")
    assert response.headers["x-intent-router-deployment"] == "kimi-k2.6-together"
    assert setup.calls("claude") == 0 and setup.calls("gpt") == 0


def test_a_member_in_cooldown_gets_no_traffic(fleets: SharedFleets) -> None:
    # A configuration of its own: the cooldown it starts outlives this test.
    setup = fleets.get(
        router={"cooldown": {"failures": 1000, "seconds": 61}}, deployments=GROUP, litellm=False
    )
    setup.fakes["together"].script(Status(429, "slow down", retry_after=120))
    with httpx.Client(base_url=setup.url, timeout=30) as client:
        for _ in range(200):  # until the weighted order reaches Together once (p = 0.25)
            client.post("/v1/chat/completions", json=BODY)
            if setup.calls("together"):
                break
    assert setup.calls("together") == 1
    answered = _answered(setup, 400)
    assert answered == {"kimi-k2.6": 400}
    assert setup.calls("together") == 1  # none of the 400 reached the member cooling down


def test_headroom_spreads_over_the_members_in_proportion_to_their_limits(
    fleets: SharedFleets,
) -> None:
    limits = {
        "kimi-k2.6": {"group": "kimi", "rpm": 300},
        "kimi-k2.6-together": {"group": "kimi", "rpm": 100},
    }
    setup = fleets.get(
        router={
            "cooldown": {"failures": 1000, "seconds": 60},
            "groups": {"kimi": {"strategy": "headroom"}},
        },
        deployments=limits,
        litellm=False,
    )
    answered = _answered(setup, 400, clients=4)
    # Within a minute the two members' used shares stay within a request of each other (3:1),
    # give or take the 3 other clients' requests ordered on usage one request old; the run may
    # straddle two UTC minutes: at most 2 x (1 + 3) off, and 2 more for rounding.
    assert abs(answered["kimi-k2.6"] - 300) <= 10, answered
    assert setup.calls("kimi") == answered["kimi-k2.6"] and setup.calls("claude") == 0


def _heavy_stream_then_six_chats(setup: Setup) -> tuple[str, list[str]] | None:
    """A stream whose usage reports 900 cached tokens, then six chats: the member the stream
    did not go to, and which member answered each chat. None if a UTC minute ended meanwhile
    (usage is counted per minute: the chats then saw either minute's counts)."""
    minute = int(time.time() // 60)
    for fake in ("kimi", "together"):  # whichever answers reports 900 cached tokens: 90% of its tpm
        setup.fakes[fake].reset()
        setup.fakes[fake].script(Reply(cached_tokens=900))
    stream = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
    with loopback.stream(
        "POST", f"{setup.url}/v1/chat/completions", json=stream, timeout=30
    ) as response:
        heavy = response.headers["x-intent-router-deployment"]
        assert response.read().rstrip().endswith(b"data: [DONE]")
    light = ({*GROUP} - {heavy}).pop()
    for fake in setup.fakes.values():
        fake.reset()
    # Counted when the stream ended (before its last bytes reached the client): without its
    # usage chunk the two members would alternate from here.
    answered = [
        setup.chat("kimi-k2.6", max_tokens=5).headers["x-intent-router-deployment"]
        for _ in range(6)
    ]
    return (light, answered) if int(time.time() // 60) == minute else None


def test_a_streams_usage_counts_against_its_members_tpm(fleets: SharedFleets) -> None:
    """The exchange takes a fraction of a second: rather than wait before it for a minute with
    time enough left (up to 20 s asleep), it runs at once and, in the rare case a minute ended
    during it, again at the start of the next minute (which no earlier request was counted in)."""
    setup = fleets.get(
        router={
            "cooldown": {"failures": 1000, "seconds": 60},
            "groups": {"kimi": {"strategy": "headroom"}},
        },
        deployments={name: {"group": "kimi", "tpm": 1000} for name in GROUP},
        litellm=False,
    )
    ran = _heavy_stream_then_six_chats(setup)
    if ran is None:  # the minute turned during the run: rarely
        time.sleep(60 - time.time() % 60 + 0.05)  # into a minute no request was counted in
        ran = _heavy_stream_then_six_chats(setup)
    assert ran is not None, "both runs straddled a UTC minute"
    light, answered = ran
    assert answered == [light] * 6
