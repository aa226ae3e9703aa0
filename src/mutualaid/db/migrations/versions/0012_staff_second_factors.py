"""staff second factors: TOTP secrets (encrypted) and recovery code hashes

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 10:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mutualaid.db.models

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_second_factors",
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("secret_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("confirmed_at", mutualaid.db.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("recovery_hashes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_staff_second_factors_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_staff_second_factors")),
    )
    # Sessions staff opened with a password alone end now: from here on they need the factor.
    op.execute(
        "DELETE FROM api_tokens WHERE account_id IN "
        "(SELECT id FROM accounts WHERE role <> 'member')"
    )


def downgrade() -> None:
    op.drop_table("staff_second_factors")
