"""Alembic environment: runs online against the engine handed over in the config."""

from __future__ import annotations

from alembic import context

from intent_router.db import metadata

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
