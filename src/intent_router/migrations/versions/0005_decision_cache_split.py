"""Decisions split their input by the provider's prompt cache: tokens read from the cache,
tokens written to it, and the input's cost with the cached part apart.

Revision ID: 0005_cache
Revises: 0005_sessions
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_cache"
down_revision = "0005_sessions"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("cached_tokens", sa.Integer()),
    ("cache_write_tokens", sa.Integer()),
    ("input_cost_usd", sa.Float()),
    ("cached_input_cost_usd", sa.Float()),
)


def upgrade() -> None:
    for name, kind in _COLUMNS:  # rows logged before this revision had no cache split: 0
        op.add_column("decisions", sa.Column(name, kind, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
