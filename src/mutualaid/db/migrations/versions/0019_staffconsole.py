"""staffconsole: when each payout transfer was sent to the provider (the payout desk and the
claimant's claim page show it; created_at is when the payout was first released)

Revision ID: 0019_staffconsole
Revises: 0018_xhbrules
Create Date: 2026-12-06 02:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mutualaid.db.models

revision = "0019_staffconsole"
down_revision = "0018_xhbrules"
branch_labels = None
depends_on = None

_UTC = mutualaid.db.models.base.UtcDateTime


def upgrade() -> None:
    with op.batch_alter_table("provider_payments") as batch:
        batch.add_column(sa.Column("sent_at", _UTC(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("provider_payments") as batch:
        batch.drop_column("sent_at")
