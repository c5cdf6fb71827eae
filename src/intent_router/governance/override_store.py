"""Team overrides in SQL (SQLite or PostgreSQL) and the cache every worker routes from.

Writes bump the ``overrides`` version row in the same transaction; each worker's OverrideCache
(a PolledSnapshot) reloads the table within a second of a change, and no request waits on the
database.
"""

from __future__ import annotations

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

from intent_router.db import MigratedStore, metadata
from intent_router.governance.snapshot import PolledSnapshot, bump_version, read_version
from intent_router.routing.overrides import Override, OverrideTable

overrides = Table(
    "overrides",
    metadata,
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


def _to_override(row: Any) -> Override:
    return Override(
        scope=row["scope"],
        subject=row["subject"],
        policy={k: tuple(v) for k, v in (row["policy"] or {}).items()},
        pin=row["pin"],
        forbid_deployments=frozenset(row["forbid_deployments"] or ()),
        forbid_providers=frozenset(row["forbid_providers"] or ()),
        sensitive=bool(row["sensitive"]),
    )


class OverrideStore(MigratedStore):
    """CRUD of overrides; every change bumps the ``overrides`` version in the same transaction."""

    def version(self) -> int:
        self.ensure_schema()
        with self.engine.connect() as connection:
            return read_version(connection, "overrides")

    def all(self) -> dict[tuple[str, str], Override]:
        self.ensure_schema()
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(overrides).order_by(overrides.c.scope, overrides.c.subject)
            ).mappings()
            return {(r["scope"], r["subject"]): _to_override(r) for r in rows}

    def put(self, override: Override) -> None:
        self.ensure_schema()
        values = {
            "policy": {k: list(v) for k, v in override.policy.items()},
            "pin": override.pin,
            "forbid_deployments": sorted(override.forbid_deployments),
            "forbid_providers": sorted(override.forbid_providers),
            "sensitive": override.sensitive,
            "updated_at": time.time(),
        }
        where = (overrides.c.scope == override.scope) & (overrides.c.subject == override.subject)
        with self.engine.begin() as connection:
            if not connection.execute(update(overrides).where(where).values(**values)).rowcount:
                connection.execute(
                    insert(overrides).values(
                        scope=override.scope, subject=override.subject, **values
                    )
                )
            bump_version(connection, "overrides")

    def delete(self, scope: str, subject: str) -> bool:
        self.ensure_schema()
        with self.engine.begin() as connection:
            removed = connection.execute(
                delete(overrides).where(
                    (overrides.c.scope == scope) & (overrides.c.subject == subject)
                )
            ).rowcount
            if removed:
                bump_version(connection, "overrides")
        return bool(removed)


class OverrideCache(PolledSnapshot[OverrideTable]):
    """The overrides as of the last poll; ``table`` never touches the database."""

    def __init__(self, store: OverrideStore, refresh_s: float = 0.5) -> None:
        super().__init__("overrides", store.version, store.all, {}, refresh_s)
        self.store = store

    @property
    def table(self) -> OverrideTable:
        return self.current
