"""The decision log: decisions, feedback, tracking state.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(128), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False, index=True),
        sa.Column("endpoint", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("intent", sa.String(64)),
        sa.Column("confidence", sa.Float),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("chain", sa.JSON, nullable=False),
        sa.Column("deployment", sa.String(128)),
        sa.Column("attempts", sa.JSON, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("llm_label", sa.String(64)),
        sa.Column("escalation_error", sa.Text),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("premium_cost_usd", sa.Float, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("classify_ms", sa.Float, nullable=False),
        sa.Column("escalate_ms", sa.Float, nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("repo", sa.String(256)),
        sa.Column("user", sa.String(256)),
        sa.Column("prompt_sha256", sa.String(64), nullable=False),
        sa.Column("prompt_text", sa.Text),
        sa.Column("probabilities", sa.JSON, nullable=False),
        sa.Column("traced", sa.Boolean, nullable=False),
        sa.Column("trace_id", sa.String(64)),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(128), nullable=False, index=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("correct_intent", sa.String(64)),
        sa.Column("rating", sa.Integer),
        sa.Column("comment", sa.Text),
    )
    op.create_table(
        "tracking_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tracking_state")
    op.drop_table("feedback")
    op.drop_table("decisions")
