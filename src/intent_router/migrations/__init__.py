"""Alembic migrations of intent-router's own tables; ``upgrade(url)`` brings a database to head.

The service upgrades on first use of the database (a database that is down only delays it);
operators can run it ahead: ``python -m intent_router.migrations <database url>``.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

HERE = Path(__file__).resolve().parent
_IN_PROCESS = threading.Lock()  # alembic's context is process-global: one upgrade at a time


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, attempts: int = 3) -> None:
    """Upgrade to head; a concurrent upgrade by another worker is waited out and retried."""
    for attempt in range(attempts):
        try:
            with _IN_PROCESS:
                command.upgrade(alembic_config(engine), "head")
            return
        except DBAPIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def main(argv: list[str]) -> int:
    from intent_router.db import make_engine

    if len(argv) != 1:
        print("usage: python -m intent_router.migrations <database url>", file=sys.stderr)
        return 2
    upgrade(make_engine(argv[0]))
    print("database at head")
    return 0
