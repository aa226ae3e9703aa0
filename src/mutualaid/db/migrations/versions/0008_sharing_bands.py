"""sharing bands: per-age-band shares of periods closed under a non-uniform rule (issue 7)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "period_bands",
        sa.Column(
            "period_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("band_index", sa.Integer(), nullable=False),
        sa.Column("from_age", sa.Integer(), nullable=False),
        sa.Column("to_age", sa.Integer(), nullable=False),
        sa.Column("born_by_on", sa.Date(), nullable=True),
        sa.Column("weight", sa.Text(), nullable=False),
        sa.Column("member_count", sa.BigInteger(), nullable=False),
        sa.Column("band_total_fen", sa.BigInteger(), nullable=False),
        sa.Column("uncapped_share_fen", sa.BigInteger(), nullable=False),
        sa.Column("share_fen", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["period_id"],
            ["periods.id"],
            name=op.f("fk_period_bands_period_id_periods"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("period_id", "band_index", name=op.f("pk_period_bands")),
    )


def downgrade() -> None:
    op.drop_table("period_bands")
