"""Team overrides in SQL (SQLite or PostgreSQL) and the cache every worker routes from.

Writes bump a version row in the same transaction; each worker's OverrideCache polls that
one row (every ``refresh_s``, 0.5 s by default) and reloads the whole, small table when it
changed, so a change reaches every worker within a second and no request waits on the
database: requests read the cache's current snapshot.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Integer,
    String,
    Table,
    UniqueConstraint,
    delete,
    insert,
    select,
    update,
)

from intent_router.db import make_engine, metadata
from intent_router.routing.overrides import Override, OverrideTable

log = logging.getLogger("intent_router.governance")

overrides = Table(
    "overrides", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(8), nullable=False),
    Column("subject", String(256), nullable=False),
    Column("policy", JSON, nullable=False),
    Column("pin", String(128)),
    Column("forbid_deployments", JSON, nullable=False),
    Column("forbid_providers", JSON, nullable=False),
    Column("sensitive", Boolean, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("scope", "subject", name="uq_overrides_scope_subject"),
)

settings_version = Table(
    "settings_version", metadata,
    Column("name", String(32), primary_key=True),
    Column("version", Integer, nullable=False),
)


def _to_override(row: Any) -> Override:
    return Override(
        scope=row["scope"], subject=row["subject"],
        policy={k: tuple(v) for k, v in (row["policy"] or {}).items()}, pin=row["pin"],
        forbid_deployments=frozenset(row["forbid_deployments"] or ()),
        forbid_providers=frozenset(row["forbid_providers"] or ()), sensitive=bool(row["sensitive"]),
    )


class OverrideStore:
    """CRUD of overrides; every change bumps the ``overrides`` version in the same transaction."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self._migrated = False

    def _ready(self) -> None:
        if not self._migrated:
            from intent_router.migrations import upgrade

            upgrade(self.engine)
            self._migrated = True

    def dispose(self) -> None:
        self.engine.dispose()

    def version(self) -> int:
        self._ready()
        with self.engine.connect() as connection:
            value = connection.execute(select(settings_version.c.version)
                                       .where(settings_version.c.name == "overrides")).scalar()
        return int(value or 0)

    def all(self) -> dict[tuple[str, str], Override]:
        self._ready()
        with self.engine.connect() as connection:
            rows = connection.execute(select(overrides).order_by(overrides.c.scope, overrides.c.subject)).mappings()
            return {(r["scope"], r["subject"]): _to_override(r) for r in rows}

    def put(self, override: Override) -> None:
        self._ready()
        values = {"policy": {k: list(v) for k, v in override.policy.items()}, "pin": override.pin,
                  "forbid_deployments": sorted(override.forbid_deployments),
                  "forbid_providers": sorted(override.forbid_providers),
                  "sensitive": override.sensitive, "updated_at": time.time()}
        where = (overrides.c.scope == override.scope) & (overrides.c.subject == override.subject)
        with self.engine.begin() as connection:
            if not connection.execute(update(overrides).where(where).values(**values)).rowcount:
                connection.execute(insert(overrides).values(scope=override.scope, subject=override.subject,
                                                            **values))
            self._bump(connection)

    def delete(self, scope: str, subject: str) -> bool:
        self._ready()
        with self.engine.begin() as connection:
            removed = connection.execute(delete(overrides).where(
                (overrides.c.scope == scope) & (overrides.c.subject == subject))).rowcount
            if removed:
                self._bump(connection)
        return bool(removed)

    @staticmethod
    def _bump(connection: Any) -> None:
        changed = connection.execute(update(settings_version).where(settings_version.c.name == "overrides")
                                     .values(version=settings_version.c.version + 1)).rowcount
        if not changed:
            connection.execute(insert(settings_version).values(name="overrides", version=1))


class OverrideCache:
    """The overrides as of the last poll; ``table`` never touches the database."""

    def __init__(self, store: OverrideStore, refresh_s: float = 0.5) -> None:
        self.store = store
        self.refresh_s = refresh_s
        self._table: OverrideTable = {}
        self._version = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def table(self) -> OverrideTable:
        return self._table

    def refresh(self) -> bool:
        """Reload if the version moved; False when the database could not be read."""
        try:
            version = self.store.version()
            if version != self._version:
                self._table = self.store.all()
                self._version = version
            return True
        except Exception as exc:  # keep routing with the last snapshot
            log.warning("override refresh failed, keeping the last snapshot: %s", type(exc).__name__)
            return False

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="override-cache", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_s):
            self.refresh()
