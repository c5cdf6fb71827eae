"""Write decisions off the request path: the handler enqueues (a decision, or a function that
builds it, called on the writer's thread), a thread writes in batches.

A batch the database refuses is written again row by row, so one bad row never holds up the
rows behind it: a row refused even then is logged once (request id and reason) and stored
degraded (``degraded_row``), still one row per request. Only a database that does not answer
keeps the batch for a retry with backoff. ``close()`` drains the queue; a crash loses at most
the rows of the last batch window (``interval_s``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from intent_router.decisions.records import Decision
from intent_router.decisions.store import DecisionStore, degraded_row

log = logging.getLogger("intent_router.decisions")


class DecisionWriter:
    """A background writer for one DecisionStore."""

    def __init__(
        self, store: DecisionStore, batch_size: int = 500, interval_s: float = 0.2
    ) -> None:
        self.store = store
        self._queue: queue.SimpleQueue[Decision | Callable[[], Decision]] = queue.SimpleQueue()
        self._batch_size = batch_size
        self._interval_s = interval_s
        self._pending: list[Decision] = []
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._written = 0
        self._submitted = 0
        self._thread = threading.Thread(target=self._run, name="decision-writer", daemon=True)
        self._thread.start()

    def submit(self, decision: Decision | Callable[[], Decision]) -> None:
        """Enqueue a decision, or a function that builds it (the writer's thread calls it, so
        the request path only enqueues); never blocks, never raises."""
        with self._idle:
            self._submitted += 1
        self._queue.put(decision)

    @property
    def backlog(self) -> int:
        with self._idle:
            return self._submitted - self._written

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything submitted so far is written (True) or the timeout passes."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            target = self._submitted
            while self._written < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        self.flush(timeout_s)
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        backoff = self._interval_s
        while not self._stop.is_set() or self._pending:
            self._collect()
            if not self._pending:
                continue
            try:
                self._write()
            except Exception as exc:  # the database is down or locked: keep the rows, retry
                log.warning(
                    "decision log write failed (%s rows kept, retrying): %s",
                    len(self._pending),
                    type(exc).__name__,
                )
                if (
                    self._stop.wait(backoff) and backoff > 5
                ):  # shutting down, the database stays down
                    return
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = self._interval_s

    def _done(self, count: int) -> None:
        """The first ``count`` pending rows are in the database (or given up on, logged)."""
        del self._pending[:count]
        with self._idle:
            self._written += count
            self._idle.notify_all()

    def _collect(self) -> None:
        """Wait for a first row (up to ``interval_s``), let the window fill, then take what
        came in one sweep: a blocking ``get`` per row would cost the request path's
        interpreter time at every row."""
        if not self._pending:
            try:
                self._take(self._queue.get(timeout=self._interval_s))
            except queue.Empty:
                return
            if not self._stop.is_set():
                self._stop.wait(self._interval_s)
        while len(self._pending) < self._batch_size:
            try:
                self._take(self._queue.get_nowait())
            except queue.Empty:
                break

    def _take(self, item: Decision | Callable[[], Decision]) -> None:
        if isinstance(item, Decision):
            self._pending.append(item)
            return
        try:
            self._pending.append(item())
        except Exception as exc:  # a bug in building one row loses that row, never the writer
            log.error("a decision could not be built (dropped): %s", type(exc).__name__)
            with self._idle:
                self._written += 1
                self._idle.notify_all()

    def _write(self) -> None:
        """Write the pending rows; raise (keeping the rest) only when the database does not answer."""
        try:
            self.store.insert_many(self._pending)
        except Exception:
            self.store.ping()  # raises when the database is down: the batch is retried later
        else:
            self._done(len(self._pending))
            return
        # The database answers, so some row is at fault: write them one by one.
        while self._pending:
            self._write_one(self._pending[0])
            self._done(1)

    def _write_one(self, row: Decision) -> None:
        reason = ""
        for _ in range(2):  # a second try: a lock or a dropped connection may pass
            try:
                self.store.insert_many([row])
                return
            except Exception as exc:
                reason = type(exc).__name__
                self.store.ping()
        try:
            self.store.insert_rows([degraded_row(row, reason)])
            outcome = "stored degraded"
        except Exception:
            self.store.ping()
            outcome = "dropped"
        log.error(
            "decision %s was refused by the database (%s): %s", row.request_id, reason, outcome
        )
