"""Settings that every worker routes from: a version row per kind of setting, and a snapshot
each worker polls.

Writers bump the kind's row in ``settings_version`` in the same transaction as their change.
A :class:`PolledSnapshot` polls that one row (every ``refresh_s``, 0.5 s by default) and
reloads the whole, small table only when it moved, so a change reaches every worker within a
second and no request ever waits on the database: requests read the current snapshot.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import Column, Integer, String, Table, insert, select, update

from intent_router.db import metadata

log = logging.getLogger("intent_router.governance")

_T = TypeVar("_T")

settings_version = Table(
    "settings_version",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("version", Integer, nullable=False),
)


def read_version(connection: Any, name: str) -> int:
    """The current version of the ``name`` settings (0 before the first change)."""
    value = connection.execute(
        select(settings_version.c.version).where(settings_version.c.name == name)
    ).scalar()
    return int(value or 0)


def bump_version(connection: Any, name: str) -> None:
    """Mark the ``name`` settings changed; call inside the writing transaction."""
    changed = connection.execute(
        update(settings_version)
        .where(settings_version.c.name == name)
        .values(version=settings_version.c.version + 1)
    ).rowcount
    if not changed:
        connection.execute(insert(settings_version).values(name=name, version=1))


class PolledSnapshot(Generic[_T]):
    """The result of ``load()`` as of the last poll in which ``version()`` moved.

    ``current`` never touches the database. A failed poll keeps the last snapshot (and logs
    the failure's type only: database errors may quote connection details).
    """

    def __init__(
        self,
        what: str,
        version: Callable[[], int],
        load: Callable[[], _T],
        empty: _T,
        refresh_s: float = 0.5,
    ) -> None:
        self.what = what
        self.refresh_s = refresh_s
        self._version_of = version
        self._load = load
        self._current = empty
        self._version = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> _T:
        return self._current

    def refresh(self) -> bool:
        """Reload if the version moved; False when the database could not be read."""
        try:
            version = self._version_of()
            if version != self._version:
                self._current = self._load()
                self._version = version
            return True
        except Exception as exc:  # keep serving from the last snapshot
            log.warning(
                "%s refresh failed, keeping the last snapshot: %s", self.what, type(exc).__name__
            )
            return False

    def start(self) -> None:
        """Load once, then poll in a daemon thread."""
        self.refresh()
        self._thread = threading.Thread(target=self._run, name=f"{self.what}-snapshot", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_s):
            self.refresh()
