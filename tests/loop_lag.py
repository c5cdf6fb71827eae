"""How late this process's event loop runs, measured, for wall-clock bounds in async tests.

A bound such as "the deadline of 0.3 s ended the walk within 0.6 s" holds on a quiet machine
and fails on a loaded CI runner, where a timer can fire a second late. ``LoopLag`` runs a
task that sleeps 10 ms at a time and notes the worst overshoot: a timer that fired late was
late because the loop was, so the bound becomes "deadline + measured lag + a little".
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

TICK_S = 0.01


class LoopLag:
    """``async with LoopLag() as lag: ...``; then ``lag.worst_s`` is the worst lateness seen."""

    def __init__(self) -> None:
        self.worst_s = 0.0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.get_running_loop().create_task(self._watch())
        await asyncio.sleep(0)  # let the watcher take its first tick
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(TICK_S)
            self.worst_s = max(self.worst_s, loop.time() - before - TICK_S)
