"""Team overrides and the settings version workers poll.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "overrides",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("policy", sa.JSON, nullable=False),
        sa.Column("pin", sa.String(128)),
        sa.Column("forbid_deployments", sa.JSON, nullable=False),
        sa.Column("forbid_providers", sa.JSON, nullable=False),
        sa.Column("sensitive", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("scope", "subject", name="uq_overrides_scope_subject"),
    )
    op.create_table(
        "settings_version",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("settings_version")
    op.drop_table("overrides")
