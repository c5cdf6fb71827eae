"""TPM/RPM headroom of deployments: what each was sent in the current minute against its
configured ``rpm`` / ``tpm``, for the ``headroom`` group strategy (routing/groups.py).

Windows are fixed 60 s UTC minutes, as the governance counters count them (and, with Redis,
in the same counters: routing/shared_usage.py). A request counts once when it is sent (one
request, its estimated input tokens) and, when its answer reports usage, the tokens beyond the
estimate (the answer's). This process's counts are always known; with Redis, the totals of
every worker replace them once read, plus what this process counted since it last published.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

WINDOW_S = 60


def window_of(now: float) -> int:
    """The index of the UTC minute containing ``now`` (seconds since the epoch)."""
    return math.floor(now / WINDOW_S)


def headroom(requests: int, tokens: int, rpm: int | None, tpm: int | None) -> float | None:
    """The share of its limits a deployment has left this minute: the smaller of the requests'
    and the tokens' (below 0 when over); None when it has no limit."""
    left = [1.0 - used / limit for used, limit in ((requests, rpm), (tokens, tpm)) if limit]
    return min(left) if left else None


@dataclass
class _Count:
    window: int
    requests: int = 0
    tokens: int = 0


class MinuteUsage:
    """Requests and tokens sent to each deployment this minute (thread-safe; clock injectable)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._local: dict[str, _Count] = {}  # everything this process sent this minute
        self._pending: dict[str, _Count] = {}  # ... not yet published
        self._shared: dict[str, _Count] = {}  # every worker's totals, as last read

    def add(self, name: str, requests: int = 0, tokens: int = 0) -> None:
        window = window_of(self._clock())
        with self._lock:
            for counts in (self._local, self._pending):
                count = counts.get(name)
                if count is None or count.window != window:
                    count = counts[name] = _Count(window)
                count.requests += requests
                count.tokens += max(tokens, 0)

    def used(self, name: str) -> tuple[int, int]:
        """(requests, tokens) sent to ``name`` this minute, by every worker as far as known."""
        window = window_of(self._clock())
        with self._lock:
            shared, pending, local = (
                c.get(name) for c in (self._shared, self._pending, self._local)
            )
            if shared is not None and shared.window == window:
                extra = (
                    pending if pending is not None and pending.window == window else _Count(window)
                )
                return shared.requests + extra.requests, shared.tokens + extra.tokens
            if local is not None and local.window == window:
                return local.requests, local.tokens
            return 0, 0

    def take_pending(self) -> dict[str, tuple[int, int, int]]:
        """What was counted here since the last call: name -> (window, requests, tokens)."""
        with self._lock:
            taken, self._pending = self._pending, {}
        return {name: (c.window, c.requests, c.tokens) for name, c in taken.items()}

    def put_back(self, pending: dict[str, tuple[int, int, int]]) -> None:
        """Counts ``take_pending`` gave that could not be published: publish them next time."""
        with self._lock:
            for name, (window, requests, tokens) in pending.items():
                count = self._pending.get(name)
                if count is None or count.window < window:
                    count = self._pending[name] = _Count(window)
                if count.window == window:
                    count.requests += requests
                    count.tokens += tokens

    def apply_shared(self, name: str, window: int, requests: int, tokens: int) -> None:
        """Every worker's totals of ``window`` (what this process published included)."""
        with self._lock:
            self._shared[name] = _Count(window, requests, tokens)
