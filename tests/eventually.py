"""Waiting on a condition in tests: poll until it holds or a deadline passes, never sleep-and-hope.

``eventually(probe, until)`` calls ``probe()`` until ``until(value)`` holds and returns that
value. At the deadline it fails with the last value it observed (or the last exception it was
told to tolerate), so a timeout says what the test was still seeing, not only that it waited.
The deadline is a bound for a loaded machine, not an expected duration: on a quiet one the
condition holds in a fraction of it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

INTERVAL_S = 0.05


def _held(value: Any) -> bool:
    return bool(value)


class _Observation:
    """The last thing a poll saw: a value, or an exception the caller tolerates."""

    def __init__(self, what: str, timeout_s: float) -> None:
        self.what, self.timeout_s = what, timeout_s
        self.deadline = time.monotonic() + timeout_s
        self.last: str = "nothing (no probe finished)"

    def saw(self, value: object) -> None:
        self.last = f"last value: {value!r}"[:2000]

    def raised(self, exc: BaseException) -> None:
        self.last = f"last error: {type(exc).__name__}: {exc}"[:2000]

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def failure(self) -> AssertionError:
        return AssertionError(
            f"{self.what or 'condition'} did not hold within {self.timeout_s} s; {self.last}"
        )


def eventually(
    probe: Callable[[], T],
    until: Callable[[T], bool] = _held,
    *,
    timeout_s: float = 30.0,
    interval_s: float = INTERVAL_S,
    what: str = "",
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """``probe()``'s first value for which ``until`` holds (by default: a truthy one).

    Exceptions listed in ``ignoring`` count as "not yet"; any other exception from ``probe``
    ends the wait at once (a probe raises to say "this will never hold", e.g. a child exited).
    Fails with an ``AssertionError`` naming ``what`` and the last observation at the deadline.
    """
    seen = _Observation(what, timeout_s)
    while True:
        try:
            value = probe()
        except ignoring as exc:
            seen.raised(exc)
        else:
            if until(value):
                return value
            seen.saw(value)
        if seen.expired():
            raise seen.failure()
        time.sleep(interval_s)


async def eventually_async(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], bool] = _held,
    *,
    timeout_s: float = 30.0,
    interval_s: float = INTERVAL_S,
    what: str = "",
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """:func:`eventually` for a coroutine probe, sleeping on the event loop between polls."""
    seen = _Observation(what, timeout_s)
    while True:
        try:
            value = await probe()
        except ignoring as exc:
            seen.raised(exc)
        else:
            if until(value):
                return value
            seen.saw(value)
        if seen.expired():
            raise seen.failure()
        await asyncio.sleep(interval_s)
