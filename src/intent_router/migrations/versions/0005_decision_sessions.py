"""Decisions say which session a turn belonged to (a SHA-256 of its scoped id, never the id)
and whether it stuck, switched, was upgraded, expired or opened the session.

Revision ID: 0005_sessions
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_sessions"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("decisions", sa.Column("session_id", sa.String(64)))
    op.add_column("decisions", sa.Column("session", sa.String(16)))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("session")
        batch.drop_column("session_id")
