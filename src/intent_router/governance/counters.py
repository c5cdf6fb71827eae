"""Counting core of client-key governance: rate limits and spend budgets, in-process or Redis.

Rate limits use **fixed 60 s windows aligned to the UTC minute**. A sliding-window approximation
would smooth the burst a fixed window allows across a boundary (at most 2x the limit), but it
cannot promise a truthful ``retry_after_s`` within 60 s: once the current window is full its
answer lies beyond the next boundary. A fixed window's answer is exact: retrying at
``now + retry_after_s`` lands in a fresh window.

Money is counted in integer **micro-dollars**: sums of integers are exact and associative, so
76 reservations of $0.013 add up to exactly $0.988 in any order, on any worker; floats (and
Redis INCRBYFLOAT, a long double printed back to text) drift by an ulp per operation.

A budget reservation holds its estimate until it is committed (replaced by the actual spend),
released, or expires (``reservation_ttl_s``, 5 min by default), so a crashed request cannot
block a budget forever. Spend is overspent by at most the requests in flight whose actual cost
exceeds their estimate. Every Redis check-and-update is one Lua script, atomic on the server.

``now`` (seconds since the epoch) may be injected; it defaults to ``time.time()``. Redis keys
get relative expiries, so an injected clock never makes Redis drop a key early.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

from intent_router.exceptions import CountersUnavailable

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "Counters",
    "CountersUnavailable",
    "InProcessCounters",
    "Period",
    "RateDecision",
    "RedisCounters",
    "Reservation",
    "make_counters",
    "period_end",
    "period_key",
    "to_micros",
]

Period = Literal["day", "month"]
WINDOW_S = 60
MICROS_PER_USD = 1_000_000
DEFAULT_RESERVATION_TTL_S = 300.0
PERIOD_GRACE_S = 3600
#: How long Redis remembers that a reservation was committed (a repeated commit is a no-op).
COMMIT_MARKER_TTL_S = 3600
"""How long budget keys outlive their period (a late commit still lands in its period)."""

_T = TypeVar("_T")


@dataclass(frozen=True)
class RateDecision:
    """The answer to one rate-limit hit."""

    allowed: bool
    remaining: int
    """What is left of the limit in the current window (after this hit, if it was allowed)."""
    retry_after_s: float
    """Seconds until the window resets, in (0, 60]; 0.0 when the hit was allowed."""


@dataclass(frozen=True)
class Reservation:
    """An estimate held against a budget until it is committed, released or expires."""

    scope: str
    period: Period
    period_key: str
    """The UTC day (``2026-11-29``) or month (``2026-11``) the spend is charged to."""
    id: str
    amount_micros: int
    expires_at: float

    @property
    def estimate_usd(self) -> float:
        return self.amount_micros / MICROS_PER_USD


class Counters(Protocol):
    """Rate limits and spend budgets shared by whoever holds the same backend."""

    async def hit(
        self, key: str, limit_per_minute: int, amount: int = 1, now: float | None = None
    ) -> RateDecision:
        """Count ``amount`` (1 for RPM, tokens for TPM) against ``key`` unless it exceeds the
        limit; a refused hit consumes nothing. An amount above the limit is always refused."""
        ...

    async def reserve(
        self,
        scope: str,
        period: Period,
        budget_usd: float,
        estimate_usd: float,
        now: float | None = None,
    ) -> Reservation | None:
        """Hold ``estimate_usd`` if spent + held + estimate <= budget; None when it does not fit."""
        ...

    async def commit(self, reservation: Reservation, actual_usd: float) -> None:
        """Replace the reservation by the actual spend (charged even if the hold expired)."""
        ...

    async def release(self, reservation: Reservation) -> None:
        """Drop the reservation without spending (the request failed)."""
        ...

    async def spent(self, scope: str, period: Period, now: float | None = None) -> float:
        """Committed spend of ``scope`` in the period containing ``now``, in dollars."""
        ...

    async def aclose(self) -> None:
        """Release connections, if any."""
        ...


def to_micros(usd: float) -> int:
    """Dollars -> integer micro-dollars (rounded to the nearest); rejects negatives and NaN."""
    if not math.isfinite(usd) or usd < 0:
        raise ValueError(f"amount must be a finite number >= 0, got {usd!r}")
    return round(usd * MICROS_PER_USD)


def period_key(period: Period, now: float) -> str:
    """The UTC calendar day (``2026-11-29``) or month (``2026-11``) containing ``now``."""
    moment = datetime.fromtimestamp(now, UTC)
    if period == "day":
        return moment.strftime("%Y-%m-%d")
    if period == "month":
        return moment.strftime("%Y-%m")
    raise ValueError(f"period must be 'day' or 'month', got {period!r}")


def period_end(period: Period, now: float) -> float:
    """When the UTC day or month containing ``now`` ends (seconds since the epoch)."""
    moment = datetime.fromtimestamp(now, UTC)
    start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return start.timestamp() + 86_400
    year, month0 = divmod(start.year * 12 + start.month, 12)  # the next month, 0-based
    return start.replace(year=year, month=month0 + 1, day=1).timestamp()


def _key_ttl_s(period: Period, now: float) -> int:
    return math.ceil(period_end(period, now) - now) + PERIOD_GRACE_S


def _window(now: float) -> tuple[int, float]:
    """The index of the 60 s window containing ``now`` and the seconds until it ends."""
    index = math.floor(now / WINDOW_S)
    return index, min(max((index + 1) * WINDOW_S - now, 1e-3), float(WINDOW_S))


def _check_limit(limit_per_minute: int, amount: int) -> None:
    if limit_per_minute < 0 or amount < 0:
        raise ValueError("limit_per_minute and amount must be >= 0")


def _decision(allowed: bool, count: int, limit: int, retry_after_s: float) -> RateDecision:
    return RateDecision(allowed, max(limit - count, 0), 0.0 if allowed else retry_after_s)


@dataclass
class _Ledger:
    expires_at: float
    spent: int = 0
    holds: dict[str, tuple[int, float]] = field(default_factory=dict)  # id -> (micros, expiry)


class InProcessCounters:
    """Counters for one worker process (the embedded default). No method awaits between its
    check and its update, so each is atomic under asyncio; a lock covers threads too."""

    def __init__(self, *, reservation_ttl_s: float = DEFAULT_RESERVATION_TTL_S) -> None:
        self._ttl_s = reservation_ttl_s
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[int, int]] = {}  # key -> (window index, count)
        self._ledgers: dict[tuple[str, str], _Ledger] = {}  # (scope, period key) -> ledger

    async def hit(
        self, key: str, limit_per_minute: int, amount: int = 1, now: float | None = None
    ) -> RateDecision:
        _check_limit(limit_per_minute, amount)
        index, retry_after_s = _window(time.time() if now is None else now)
        with self._lock:
            window, count = self._windows.get(key, (index, 0))
            count = count if window == index else 0
            allowed = count + amount <= limit_per_minute
            if allowed:
                count += amount
                self._windows[key] = (index, count)
        return _decision(allowed, count, limit_per_minute, retry_after_s)

    async def reserve(
        self,
        scope: str,
        period: Period,
        budget_usd: float,
        estimate_usd: float,
        now: float | None = None,
    ) -> Reservation | None:
        now = time.time() if now is None else now
        budget, estimate = to_micros(budget_usd), to_micros(estimate_usd)
        pkey = period_key(period, now)
        with self._lock:
            ledger = self._ledger(scope, pkey, now, now + _key_ttl_s(period, now))
            ledger.holds = {i: h for i, h in ledger.holds.items() if h[1] > now}
            if ledger.spent + sum(m for m, _ in ledger.holds.values()) + estimate > budget:
                return None
            held = Reservation(scope, period, pkey, uuid.uuid4().hex, estimate, now + self._ttl_s)
            ledger.holds[held.id] = (estimate, held.expires_at)
        return held

    async def commit(self, reservation: Reservation, actual_usd: float) -> None:
        actual, now = to_micros(actual_usd), time.time()
        with self._lock:
            ledger = self._ledger(
                reservation.scope, reservation.period_key, now, now + PERIOD_GRACE_S
            )
            ledger.holds.pop(reservation.id, None)
            ledger.spent += actual

    async def release(self, reservation: Reservation) -> None:
        with self._lock:
            ledger = self._ledgers.get((reservation.scope, reservation.period_key))
            if ledger is not None:
                ledger.holds.pop(reservation.id, None)

    async def spent(self, scope: str, period: Period, now: float | None = None) -> float:
        pkey = period_key(period, time.time() if now is None else now)
        with self._lock:
            ledger = self._ledgers.get((scope, pkey))
            return (ledger.spent if ledger else 0) / MICROS_PER_USD

    async def aclose(self) -> None:
        return None

    def _ledger(self, scope: str, pkey: str, now: float, expires_at: float) -> _Ledger:
        """The ledger of (scope, period key), created if absent; past ledgers are dropped then,
        as Redis would expire their keys."""
        ledger = self._ledgers.get((scope, pkey))
        if ledger is None:
            self._ledgers = {k: v for k, v in self._ledgers.items() if v.expires_at > now}
            ledger = self._ledgers[(scope, pkey)] = _Ledger(expires_at)
        return ledger


# KEYS: window counter. ARGV: limit, amount, ttl. Returns {allowed, count}.
_HIT_LUA = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[2])
if count + amount > tonumber(ARGV[1]) then return {0, count} end
count = redis.call('INCRBY', KEYS[1], amount)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, count}
"""

# KEYS: spend (string), holds (hash id -> micros), deadlines (zset id -> expiry).
# ARGV: now, budget, estimate, id, expires_at, ttl. Returns 1 if reserved, else 0.
_RESERVE_LUA = """
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])) do
  redis.call('HDEL', KEYS[2], id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
for _, micros in ipairs(redis.call('HVALS', KEYS[2])) do used = used + tonumber(micros) end
if used + tonumber(ARGV[3]) > tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], 0, 'NX')
redis.call('HSET', KEYS[2], ARGV[4], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[6]) end
return 1
"""

# KEYS as for reserve. ARGV: id, actual, ttl for a spend key that had expired already.
_COMMIT_LUA = """
if redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[4]) == false then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('INCRBY', KEYS[1], ARGV[2])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return 1
"""

# KEYS as for reserve. ARGV: id.
_RELEASE_LUA = """
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
"""


class RedisCounters:
    """Counters shared by every worker and instance pointed at the same Redis and prefix.

    Socket timeouts are ``timeout_s`` and a whole call, including the wait for one of the
    ``max_connections`` pooled connections, is bounded by three times that. Calls are not
    retried: a script whose reply was lost may have run, and running it again would count
    twice. Any Redis failure is raised as :class:`CountersUnavailable`.
    """

    def __init__(
        self,
        url: str,
        prefix: str = "intent-router:",
        *,
        reservation_ttl_s: float = DEFAULT_RESERVATION_TTL_S,
        timeout_s: float = 0.5,
        max_connections: int = 50,
    ) -> None:
        # Imported here: only Redis-backed services pay for it (0.35 s and 18 MB at start).
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisError

        self._failures = (RedisError, OSError, TimeoutError)
        self._prefix = prefix
        self._ttl_s = reservation_ttl_s
        self._deadline_s = 3 * timeout_s
        # A blocking pool queues a burst for a free connection instead of failing it.
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=self._deadline_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        self._redis: Redis = Redis(connection_pool=pool)
        kwargs = pool.connection_kwargs
        self._where = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
        self._hit = self._redis.register_script(_HIT_LUA)
        self._reserve = self._redis.register_script(_RESERVE_LUA)
        self._commit = self._redis.register_script(_COMMIT_LUA)
        self._release = self._redis.register_script(_RELEASE_LUA)

    async def hit(
        self, key: str, limit_per_minute: int, amount: int = 1, now: float | None = None
    ) -> RateDecision:
        _check_limit(limit_per_minute, amount)
        index, retry_after_s = _window(time.time() if now is None else now)
        keys = [f"{self._prefix}rate:{index}:{key}"]
        args = [limit_per_minute, amount, math.ceil(retry_after_s) + WINDOW_S]
        allowed, count = await self._guarded(self._hit(keys, args), "a rate-limit hit")
        return _decision(bool(allowed), int(count), limit_per_minute, retry_after_s)

    async def reserve(
        self,
        scope: str,
        period: Period,
        budget_usd: float,
        estimate_usd: float,
        now: float | None = None,
    ) -> Reservation | None:
        now = time.time() if now is None else now
        budget, estimate = to_micros(budget_usd), to_micros(estimate_usd)
        pkey = period_key(period, now)
        held = Reservation(scope, period, pkey, uuid.uuid4().hex, estimate, now + self._ttl_s)
        args: list[str | int] = [
            repr(now),
            budget,
            estimate,
            held.id,
            repr(held.expires_at),
            _key_ttl_s(period, now),
        ]
        ok = await self._guarded(self._reserve(self._budget_keys(scope, pkey), args), "reserve")
        return held if ok else None

    async def commit(self, reservation: Reservation, actual_usd: float) -> None:
        # A marker per reservation makes the commit idempotent: a caller that timed out
        # waiting for an answer may send it again without charging twice.
        keys = [
            *self._budget_keys(reservation.scope, reservation.period_key),
            f"{self._prefix}committed:{reservation.id}",
        ]
        args: list[str | int] = [
            reservation.id,
            to_micros(actual_usd),
            PERIOD_GRACE_S,
            COMMIT_MARKER_TTL_S,
        ]
        await self._guarded(self._commit(keys, args), "commit")

    async def release(self, reservation: Reservation) -> None:
        keys = self._budget_keys(reservation.scope, reservation.period_key)
        await self._guarded(self._release(keys, [reservation.id]), "release")

    async def spent(self, scope: str, period: Period, now: float | None = None) -> float:
        pkey = period_key(period, time.time() if now is None else now)
        micros = await self._guarded(self._redis.get(self._budget_keys(scope, pkey)[0]), "spent")
        return int(micros or 0) / MICROS_PER_USD

    async def aclose(self) -> None:
        await self._redis.aclose(close_connection_pool=True)

    def _budget_keys(self, scope: str, pkey: str) -> list[str]:
        # The fixed-format period key comes before the free-form scope, so keys never collide.
        return [f"{self._prefix}{kind}:{pkey}:{scope}" for kind in ("spend", "holds", "expiry")]

    async def _guarded(self, call: Awaitable[_T], what: str) -> _T:
        try:
            async with asyncio.timeout(self._deadline_s):
                return await call
        except self._failures as exc:
            raise CountersUnavailable(
                f"Redis counters at {self._where} failed during {what}: {type(exc).__name__}: {exc}"
            ) from exc


def make_counters(
    redis_url: str | None,
    prefix: str = "intent-router:",
    *,
    reservation_ttl_s: float = DEFAULT_RESERVATION_TTL_S,
) -> Counters:
    """Redis-backed counters when a URL is given (several workers), in-process ones otherwise."""
    if redis_url:
        return RedisCounters(redis_url, prefix, reservation_ttl_s=reservation_ttl_s)
    return InProcessCounters(reservation_ttl_s=reservation_ttl_s)
