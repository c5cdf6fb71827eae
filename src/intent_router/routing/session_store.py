"""Where sessions live: in this process (bounded, least recently used first out), or in Redis
when ``governance.redis_url`` is set, so every worker of every instance routes a session alike.
Either keeps a state ``grace_s`` past its expiry (then drops it), so that a turn arriving in
that window is told its session ``expired`` rather than taken for a ``new`` one.

Redis is never a reason to fail a request: when it does not answer (``timeout_s``), the
session is read from and written to the in-process store instead, a warning is logged once,
and Redis is left alone for ``retry_s`` before it is tried again (then an info line when it
is back). Keys are ``<prefix>session:<sha256>``: the raw session id is never stored.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from intent_router.types import SessionState

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("intent_router.sessions")


class SessionStore(Protocol):
    """Session states by key (``SessionId.key``)."""

    async def get(self, key: str) -> SessionState | None:
        """The state stored under ``key``, or None (unknown, expired or unreadable)."""
        ...

    async def put(self, key: str, state: SessionState) -> None:
        """Store ``state`` until ``state.expires_at``."""
        ...

    async def aclose(self) -> None: ...


class InProcessSessions:
    """Sessions of this process: at most ``max_sessions``, the least recently used dropped first."""

    def __init__(
        self, max_sessions: int, grace_s: float = 0.0, clock: Callable[[], float] = time.time
    ) -> None:
        self._max = max_sessions
        self._grace_s = grace_s
        self._clock = clock
        self._states: OrderedDict[str, SessionState] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._states)

    async def get(self, key: str) -> SessionState | None:
        with self._lock:
            state = self._states.get(key)
            if state is None:
                return None
            if state.expires_at + self._grace_s <= self._clock():
                del self._states[key]
                return None
            self._states.move_to_end(key)
            return state

    async def put(self, key: str, state: SessionState) -> None:
        with self._lock:
            self._states[key] = state
            self._states.move_to_end(key)
            while len(self._states) > self._max:
                self._states.popitem(last=False)

    async def aclose(self) -> None:
        return None


class RedisSessions:
    """Sessions in Redis, shared by every worker and instance with the same URL and prefix;
    the in-process ``fallback`` while Redis does not answer."""

    def __init__(
        self,
        url: str,
        prefix: str,
        fallback: InProcessSessions,
        *,
        grace_s: float = 0.0,
        timeout_s: float = 0.25,
        retry_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from redis.asyncio import Redis  # only Redis-backed services pay for the import
        from redis.exceptions import RedisError

        self._failures = (RedisError, OSError, TimeoutError)
        self._redis: Redis = Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True
        )
        self._prefix = f"{prefix}session:"
        self._fallback = fallback
        self._grace_s = grace_s
        self._timeout_s = timeout_s
        self._retry_s = retry_s
        self._clock = clock
        self._down_until = 0.0
        self._down = False

    async def get(self, key: str) -> SessionState | None:
        if self._skipping():
            return await self._fallback.get(key)
        try:
            async with asyncio.timeout(self._timeout_s):
                text = await self._redis.get(self._prefix + key)
        except self._failures as exc:
            self._failed(exc)
            return await self._fallback.get(key)
        self._answered()
        state = SessionState.from_json(text) if text is not None else None
        return (
            state
            if state is not None and state.expires_at + self._grace_s > self._clock()
            else None
        )

    async def put(self, key: str, state: SessionState) -> None:
        ttl_ms = int((state.expires_at + self._grace_s - self._clock()) * 1000)
        if ttl_ms <= 0:
            return
        if self._skipping():
            await self._fallback.put(key, state)
            return
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._redis.set(self._prefix + key, state.to_json(), px=ttl_ms)
        except self._failures as exc:
            self._failed(exc)
            await self._fallback.put(key, state)
            return
        self._answered()

    async def aclose(self) -> None:
        await self._redis.aclose()

    def _skipping(self) -> bool:
        return self._down and self._clock() < self._down_until

    def _failed(self, exc: BaseException) -> None:
        if not self._down:
            log.warning(
                "sessions: Redis did not answer (%s); sessions are kept per process "
                "until it does (retried every %g s)",
                type(exc).__name__,
                self._retry_s,
            )
        self._down = True
        self._down_until = self._clock() + self._retry_s

    def _answered(self) -> None:
        if self._down:
            log.info("sessions: Redis answers again; sessions are shared")
            self._down = False


def make_session_store(
    redis_url: str | None, prefix: str, max_sessions: int, grace_s: float
) -> SessionStore:
    """Redis-backed sessions when a URL is given (several workers), in-process ones otherwise."""
    local = InProcessSessions(max_sessions, grace_s)
    return RedisSessions(redis_url, prefix, local, grace_s=grace_s) if redis_url else local
