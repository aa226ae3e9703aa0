"""memberpay: the rules hash a member agreed to when joining (issue 17)

Revision ID: 0020_memberpay
Revises: 0019_staffconsole
Create Date: 2026-12-06 02:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_memberpay"
down_revision = "0019_staffconsole"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("memberships") as batch:
        batch.add_column(sa.Column("rules_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("memberships") as batch:
        batch.drop_column("rules_sha256")
