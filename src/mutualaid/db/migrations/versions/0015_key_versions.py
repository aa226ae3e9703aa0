"""key versions: the secret key version of each person's hash and ciphertexts and of each staff
second factor's secret (existing rows: version 1, the single MUTUALAID_SECRET_KEY)

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-05 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("persons", "staff_second_factors"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "key_version", sa.SmallInteger(), server_default=sa.text("1"), nullable=False
                )
            )
    op.create_index("ix_persons_key_version", "persons", ["key_version"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_persons_key_version", table_name="persons")
    for table in ("persons", "staff_second_factors"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("key_version")
