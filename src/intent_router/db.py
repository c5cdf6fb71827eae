"""The one SQLAlchemy MetaData of intent-router's own tables (decision log, governance) and the
engine factory. Alembic migrations (src/intent_router/migrations) are written against it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy import exc as sa_exc

from intent_router.exceptions import StorageUnavailable

metadata = MetaData()


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL mode and a busy timeout. JSON columns are
    encoded by msgspec (several times faster than the json module, same text)."""
    engine = create_engine(url, pool_pre_ping=True, json_serializer=_json)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


@contextmanager
def storage_outage_as_unavailable() -> Iterator[None]:
    """Turn "the database cannot be reached" (refused, down, timed out, pool exhausted) into
    StorageUnavailable. The message names the failure's type only: SQLAlchemy's text quotes
    the URL and the statement."""
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError) as exc:
        cause = getattr(exc, "orig", None) or exc
        raise StorageUnavailable(f"the database did not answer ({type(cause).__name__})") from exc
    except sa_exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise StorageUnavailable("the database connection was lost") from exc
        raise


class MigratedStore:
    """A store over one engine (thread-safe: a connection per call) whose database is migrated
    to head (Alembic) on first use, so a database that is down at start delays the store's
    first use, never the service's start."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        self._schema_ready = False

    def ensure_schema(self) -> None:
        if not self._schema_ready:
            from intent_router.migrations import upgrade  # imports this module's metadata

            upgrade(self.engine)
            self._schema_ready = True

    def dispose(self) -> None:
        self.engine.dispose()
