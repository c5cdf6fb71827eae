"""Cooldowns shared through Redis: a deployment one worker saw fail (a 429 with Retry-After,
or repeated failures) is skipped by every worker of every instance, within ``interval_s``.

The request path never waits on Redis: each worker keeps routing from its own
CooldownTracker. A background task publishes the cooldowns this worker starts (as the
wall-clock time they end, keeping the later of two) and, every ``interval_s``, reads every
deployment's and applies the ones still running. If Redis is down, cooldowns stay per worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from intent_router.routing.cooldown import CooldownTracker

log = logging.getLogger("intent_router.cooldowns")

# Keep the later end; the key expires with the cooldown.
_EXTEND_LUA = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local ends = tonumber(ARGV[1])
if ends > current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
"""


class SharedCooldowns:
    """Publishes ``tracker``'s cooldowns to Redis and applies everyone else's."""

    def __init__(
        self,
        tracker: CooldownTracker,
        redis_url: str,
        deployments: Iterable[str],
        prefix: str = "intent-router:",
        interval_s: float = 0.5,
        timeout_s: float = 0.5,
    ) -> None:
        self._tracker = tracker
        self._deployments = list(deployments)
        self._keys = [f"{prefix}cooldown:{name}" for name in self._deployments]
        self._key_of = dict(zip(self._deployments, self._keys, strict=True))
        self._interval_s = interval_s
        self._redis = Redis.from_url(
            redis_url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            decode_responses=True,
        )
        self._extend = self._redis.register_script(_EXTEND_LUA)
        self._pending: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        tracker.listen(self._heard)

    def _heard(self, deployment: str, seconds: float) -> None:
        """A cooldown started here: publish it at the next tick (called on the event loop)."""
        until = time.time() + seconds
        self._pending[deployment] = max(self._pending.get(deployment, 0.0), until)
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="shared-cooldowns")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._redis.aclose()

    async def sync_once(self) -> None:
        """Publish what started here, then apply what every worker published."""
        pending, self._pending = self._pending, {}
        try:
            for deployment, until in pending.items():
                ttl_ms = max(1, int((until - time.time()) * 1000))
                await self._extend(keys=[self._key_of[deployment]], args=[repr(until), ttl_ms])
            values = await self._redis.mget(self._keys)
        except (RedisError, OSError, TimeoutError) as exc:
            for deployment, until in pending.items():  # try again next tick
                self._pending[deployment] = max(self._pending.get(deployment, 0.0), until)
            log.debug("shared cooldowns unavailable: %s", type(exc).__name__)
            return
        now = time.time()
        for deployment, value in zip(self._deployments, values, strict=True):
            if value is not None:
                self._tracker.cool_down(deployment, float(value) - now)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval_s)
            self._wake.clear()
            await self.sync_once()
