"""messages: delivery state of the notification outbox, members' message preferences, phone codes

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mutualaid.db.models

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_UTC = mutualaid.db.models.base.UtcDateTime


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("phone_verified_at", _UTC(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("notify_channel", sa.String(length=10), server_default="sms", nullable=False)
        )
        batch.add_column(
            sa.Column(
                "notify_optional", sa.Boolean(), server_default=sa.text("true"), nullable=False
            )
        )
        batch.add_column(sa.Column("email", sa.String(length=254), nullable=True))
    op.drop_index("ix_notifications_unsent", table_name="notifications")
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("channel", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("next_attempt_at", _UTC(timezone=True), nullable=True))
        batch.add_column(sa.Column("lease_token", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("leased_until", _UTC(timezone=True), nullable=True))
        batch.add_column(sa.Column("dead_at", _UTC(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_error", sa.String(length=200), nullable=True))
    op.create_index(
        "ix_notifications_unsent",
        "notifications",
        ["id"],
        unique=False,
        sqlite_where=sa.text("sent_at IS NULL AND dead_at IS NULL"),
        postgresql_where=sa.text("sent_at IS NULL AND dead_at IS NULL"),
    )
    op.create_index(
        "ix_notifications_dead",
        "notifications",
        ["id"],
        unique=False,
        sqlite_where=sa.text("dead_at IS NOT NULL"),
        postgresql_where=sa.text("dead_at IS NOT NULL"),
    )
    op.create_table(
        "phone_codes",
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", _UTC(timezone=True), nullable=False),
        sa.Column("expires_at", _UTC(timezone=True), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_phone_codes_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_phone_codes")),
    )


def downgrade() -> None:
    op.drop_table("phone_codes")
    op.drop_index("ix_notifications_dead", table_name="notifications")
    op.drop_index("ix_notifications_unsent", table_name="notifications")
    with op.batch_alter_table("notifications") as batch:
        for column in (
            "last_error",
            "dead_at",
            "leased_until",
            "lease_token",
            "next_attempt_at",
            "attempts",
            "channel",
        ):
            batch.drop_column(column)
    op.create_index(
        "ix_notifications_unsent",
        "notifications",
        ["id"],
        unique=False,
        sqlite_where=sa.text("sent_at IS NULL"),
        postgresql_where=sa.text("sent_at IS NULL"),
    )
    with op.batch_alter_table("accounts") as batch:
        for column in ("email", "notify_optional", "notify_channel", "phone_verified_at"):
            batch.drop_column(column)
