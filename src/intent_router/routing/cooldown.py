"""Which deployments are cooling down, after Retry-After or repeated failures."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: Told (deployment, seconds from now) whenever a failure starts or extends a cooldown.
CooldownListener = Callable[[str, float], None]


class CooldownTracker:
    """Per-deployment cooldowns; thread-safe; the clock is injectable for tests.

    A Retry-After puts the deployment in cooldown for that long (at most
    ``max_retry_after_s``: an upstream cannot switch itself off for a year); ``failures_to_trip``
    consecutive retryable failures put it in cooldown for ``cooldown_s``. A success resets
    the failure count. Listeners hear of every cooldown a failure starts or extends (to share
    it with other workers), and ``cool_down`` applies one heard from elsewhere.
    """

    def __init__(
        self,
        failures_to_trip: int,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_retry_after_s: float = 300.0,
    ) -> None:
        self._failures_to_trip = failures_to_trip
        self._cooldown_s = cooldown_s
        self._max_retry_after_s = max_retry_after_s
        self._clock = clock
        self._until: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()
        self._listeners: list[CooldownListener] = []

    def listen(self, listener: CooldownListener) -> None:
        self._listeners.append(listener)

    def cool_down(self, deployment: str, seconds: float) -> None:
        """Make ``deployment`` unavailable for ``seconds`` from now (unless it already is for
        longer); listeners are not told: this is how a cooldown from elsewhere arrives."""
        if seconds <= 0:
            return
        with self._lock:
            until = self._clock() + seconds
            self._until[deployment] = max(self._until.get(deployment, float("-inf")), until)

    def available(self, deployment: str) -> bool:
        """True unless ``deployment`` is cooling down now."""
        with self._lock:
            return self._clock() >= self._until.get(deployment, float("-inf"))

    def remaining_s(self, deployment: str) -> float:
        with self._lock:
            return max(0.0, self._until.get(deployment, 0.0) - self._clock())

    def record_success(self, deployment: str) -> None:
        with self._lock:
            self._failures.pop(deployment, None)

    def record_failure(self, deployment: str, retry_after_s: float | None = None) -> None:
        """Count a retryable failure, honouring Retry-After when the provider sent one."""
        with self._lock:
            now = self._clock()
            count = self._failures.get(deployment, 0) + 1
            self._failures[deployment] = count
            until = self._until.get(deployment, float("-inf"))
            if retry_after_s is not None and retry_after_s > 0:  # NaN is not > 0
                until = max(until, now + min(retry_after_s, self._max_retry_after_s))
            if count >= self._failures_to_trip:
                until = max(until, now + self._cooldown_s)
                self._failures[deployment] = 0
            extended = until > self._until.get(deployment, float("-inf")) and until > now
            self._until[deployment] = until
        if extended:
            for listener in self._listeners:
                listener(deployment, until - now)
