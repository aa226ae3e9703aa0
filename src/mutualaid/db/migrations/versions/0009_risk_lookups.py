"""risk lookups: score one claim by indexed probes instead of loading the plan's window (issue 9)

Claims get the person's province at filing and indexes for the per-claim counts and links;
evidence gets its image hash's four 16-bit bands, indexed, for the near-duplicate search.
Existing rows are filled set-based.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

CLAIM_INDEXES = (
    ("ix_claims_plan_reported", ["plan_id", "reported_on"]),
    ("ix_claims_plan_hospital", ["plan_id", "hospital", "reported_on"]),
    ("ix_claims_plan_doctor", ["plan_id", "doctor", "reported_on"]),
    (
        "ix_claims_plan_illness",
        ["plan_id", "illness_code", "reported_on", "age_at_diagnosis", "province_code"],
    ),
    ("ix_claims_plan_province", ["plan_id", "province_code", "reported_on"]),
    ("ix_claims_contact_phone", ["contact_phone_hash"]),
    ("ix_claims_payee_account", ["payee_account_hash"]),
    ("ix_claims_address", ["address_hash"]),
    ("ix_claims_device", ["device_hash"]),
)
BANDS = 4


def _band_sql(dialect: str, band: int) -> str:
    """SQL for band `band` (four hex digits) of evidence.phash as an integer."""
    start = 4 * band + 1
    if dialect == "postgresql":
        return f"('x' || substr(phash, {start}, 4))::bit(16)::int"
    digits = [
        f"(instr('0123456789abcdef', lower(substr(phash, {start + i}, 1))) - 1)" for i in range(4)
    ]
    return f"({digits[0]} * 4096 + {digits[1]} * 256 + {digits[2]} * 16 + {digits[3]})"


def upgrade() -> None:
    with op.batch_alter_table("claims", schema=None) as batch_op:
        batch_op.add_column(sa.Column("province_code", sa.String(length=2), nullable=True))
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        for band in range(BANDS):
            batch_op.add_column(sa.Column(f"phash_band{band}", sa.Integer(), nullable=True))

    op.execute(
        "UPDATE claims SET province_code = (SELECT persons.province_code FROM persons "
        "WHERE persons.id = claims.person_id)"
    )
    dialect = op.get_bind().dialect.name
    op.execute(
        "UPDATE evidence SET "
        + ", ".join(f"phash_band{band} = {_band_sql(dialect, band)}" for band in range(BANDS))
        + " WHERE phash IS NOT NULL"
    )

    with op.batch_alter_table("claims", schema=None) as batch_op:
        for name, columns in CLAIM_INDEXES:
            batch_op.create_index(name, columns, unique=False)
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        for band in range(BANDS):
            batch_op.create_index(
                f"ix_evidence_phash_band{band}", [f"phash_band{band}"], unique=False
            )


def downgrade() -> None:
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        for band in range(BANDS):
            batch_op.drop_index(f"ix_evidence_phash_band{band}")
        for band in range(BANDS):
            batch_op.drop_column(f"phash_band{band}")
    with op.batch_alter_table("claims", schema=None) as batch_op:
        for name, _ in CLAIM_INDEXES:
            batch_op.drop_index(name)
        batch_op.drop_column("province_code")
