"""Decisions say which organisation (a client key's team) and client key asked, and whether a
budget downgraded the request.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("decisions", sa.Column("org", sa.String(256)))
    op.add_column("decisions", sa.Column("client_key_id", sa.String(32)))
    op.add_column("decisions", sa.Column("budget", sa.String(16)))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("budget")
        batch.drop_column("client_key_id")
        batch.drop_column("org")
