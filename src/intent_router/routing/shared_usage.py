"""Deployment usage shared through the governance counters (Redis when ``governance.redis_url``
is set): every worker's requests and tokens to each rate-limited deployment this minute, so
the ``headroom`` strategy of every worker and instance reads the same headroom.

The request path never waits on it: each worker orders groups from its own MinuteUsage. A
background task publishes what this worker counted (into the window it was counted in) and,
every ``interval_s``, reads every worker's totals. If the counters fail, counts stay per worker
until they answer again (nothing counted is lost while its minute lasts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from intent_router.exceptions import CountersUnavailable
from intent_router.routing.headroom import WINDOW_S, MinuteUsage, window_of

log = logging.getLogger("intent_router.headroom")

#: A limit no count reaches: the counters only count (a deployment's real limit is the config's).
UNBOUNDED = 2**50


class WindowCounters(Protocol):
    """What this needs of governance/counters.py's Counters: fixed-minute hits."""

    async def hit(
        self, key: str, limit_per_minute: int, amount: int = 1, now: float | None = None
    ) -> Any: ...


class SharedUsage:
    """Publishes ``usage``'s counts of ``deployments`` and applies every worker's."""

    def __init__(
        self,
        usage: MinuteUsage,
        counters: WindowCounters,
        deployments: Iterable[str],
        interval_s: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._usage = usage
        self._counters = counters
        self._deployments = list(deployments)
        self._interval_s = interval_s
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="shared-usage")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def sync_once(self) -> bool:
        """Publish what was counted here, then read every worker's totals; False if the
        counters did not answer (the counts are kept for the next try)."""
        now = self._clock()
        unsent = {
            name: list(counts)
            for name, counts in self._usage.take_pending().items()
            if counts[0] >= window_of(now)
        }  # a past minute's: no one reads it any more
        try:
            for name, counts in unsent.items():
                at = counts[0] * WINDOW_S + WINDOW_S / 2  # inside the minute it was counted in
                for index, kind in ((1, "requests"), (2, "tokens")):
                    if counts[index]:
                        await self._counters.hit(_key(kind, name), UNBOUNDED, counts[index], now=at)
                        counts[index] = 0  # published: never sent twice
            for name in self._deployments:
                used = [
                    UNBOUNDED
                    - (await self._counters.hit(_key(kind, name), UNBOUNDED, 0, now=now)).remaining
                    for kind in ("requests", "tokens")
                ]
                self._usage.apply_shared(name, window_of(now), used[0], used[1])
        except CountersUnavailable as exc:
            self._usage.put_back(
                {name: (c[0], c[1], c[2]) for name, c in unsent.items() if c[1] or c[2]}
            )
            log.debug("shared deployment usage unavailable: %s", exc)
            return False
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self.sync_once()


def _key(kind: str, deployment: str) -> str:
    return f"deployment-{kind}:{deployment}"
