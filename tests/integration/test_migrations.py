"""Alembic migrations build exactly the tables the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import intent_router.decisions.store
import intent_router.governance.client_keys
import intent_router.governance.override_store  # noqa: F401
from intent_router.db import make_engine, metadata
from intent_router.migrations import upgrade


def test_head_matches_the_declared_tables(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    upgrade(engine)  # idempotent
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    assert {
        "decisions",
        "feedback",
        "tracking_state",
        "overrides",
        "settings_version",
        "client_keys",
        "alembic_version",
    } <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_workers_upgrading_at_once_all_succeed(database_url: str) -> None:
    """Three processes (like three service workers) migrate one fresh database together."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "intent_router.migrations", database_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120)[0].decode() for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    engine = make_engine(database_url)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    engine.dispose()


def test_threads_of_one_process_share_the_upgrade(database_url: str) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        engine = make_engine(database_url)
        try:
            upgrade(engine)
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
