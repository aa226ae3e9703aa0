"""banded caps: the annual cap under a non-uniform sharing rule, per cohort and birth interval

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "period_band_groups",
        sa.Column(
            "period_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("cohort_on", sa.Date(), nullable=False),
        sa.Column("interval_index", sa.Integer(), nullable=False),
        sa.Column("born_after_on", sa.Date(), nullable=True),
        sa.Column("born_by_on", sa.Date(), nullable=True),
        sa.Column("band_index", sa.Integer(), nullable=False),
        sa.Column("ytd_fen", sa.BigInteger(), nullable=False),
        sa.Column("member_count", sa.BigInteger(), nullable=False),
        sa.Column("charge_fen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["period_id"],
            ["periods.id"],
            name=op.f("fk_period_band_groups_period_id_periods"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "period_id", "cohort_on", "interval_index", name=op.f("pk_period_band_groups")
        ),
    )


def downgrade() -> None:
    op.drop_table("period_band_groups")
