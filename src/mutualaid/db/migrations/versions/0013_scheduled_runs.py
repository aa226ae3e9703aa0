"""scheduled runs: the worker's leases and outcomes

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 13:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mutualaid.db.models

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduled_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("job", sa.String(length=40), nullable=False),
        sa.Column("scope", sa.String(length=50), nullable=False),
        sa.Column("due_at", mutualaid.db.models.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at", mutualaid.db.models.base.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column(
            "lease_until", mutualaid.db.models.base.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("started_at", mutualaid.db.models.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column(
            "finished_at", mutualaid.db.models.base.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("outcome", sa.String(length=300), nullable=True),
        sa.Column("error_code", sa.String(length=60), nullable=True),
        sa.Column("error_message", sa.String(length=300), nullable=True),
        sa.Column(
            "created_at", mutualaid.db.models.base.UtcDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_runs")),
        sa.UniqueConstraint("job", "scope", "due_at", name=op.f("uq_scheduled_runs_job")),
    )
    op.create_index("ix_scheduled_runs_state", "scheduled_runs", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_scheduled_runs_state", table_name="scheduled_runs")
    op.drop_table("scheduled_runs")
