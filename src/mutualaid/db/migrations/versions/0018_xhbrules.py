"""xhbrules: age-out moves into the elderly plan, refunds of a membership's shares (issue 19)

Revision ID: 0018_xhbrules
Revises: 0017
Create Date: 2026-12-06 02:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mutualaid.db.models

revision = "0018_xhbrules"
down_revision = "0017"
branch_labels = None
depends_on = None

_UTC = mutualaid.db.models.base.UtcDateTime
_ID = mutualaid.db.models.base.Id


def upgrade() -> None:
    op.create_table(
        "age_out_moves",
        sa.Column("from_membership_id", _ID, nullable=False),
        sa.Column("opted_in_at", _UTC(timezone=True), nullable=False),
        sa.Column("to_membership_id", _ID, nullable=True),
        sa.Column("moved_at", _UTC(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["from_membership_id"], ["memberships.id"]),
        sa.ForeignKeyConstraint(["to_membership_id"], ["memberships.id"]),
        sa.PrimaryKeyConstraint("from_membership_id"),
        sa.UniqueConstraint("to_membership_id"),
    )
    op.create_index("ix_age_out_moves_pending", "age_out_moves", ["moved_at", "from_membership_id"])
    op.create_table(
        "membership_refunds",
        sa.Column("id", _ID, nullable=False),
        sa.Column("plan_id", _ID, nullable=False),
        sa.Column("membership_id", _ID, nullable=False),
        sa.Column("payer_account_id", _ID, nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", _UTC(timezone=True), nullable=False),
        sa.Column("paid_at", _UTC(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["membership_id"], ["memberships.id"]),
        sa.ForeignKeyConstraint(["payer_account_id"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("membership_id"),
    )
    op.create_index(
        "ix_membership_refunds_status", "membership_refunds", ["status", "plan_id", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_membership_refunds_status", table_name="membership_refunds")
    op.drop_table("membership_refunds")
    op.drop_index("ix_age_out_moves_pending", table_name="age_out_moves")
    op.drop_table("age_out_moves")
