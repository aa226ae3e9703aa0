"""logleafhash: the by-hash lookup of log leaves as a hash index on PostgreSQL (issue 20)

The leaf hashes are random 32-byte keys: a B-tree lands each appended leaf on a random page of a
large index, the largest single cost of an append after the row itself (issue 20's ablation,
benchmarks/bench_log.py --ablation). The lookup is only ever by equality (`leaf_index_of`,
`verify`), which a hash index serves with a 4-byte hash code per row. SQLite has no hash index:
its B-tree stays.

Revision ID: 0021_logleafhash
Revises: 0020_memberpay
Create Date: 2026-12-06 05:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0021_logleafhash"
down_revision = "0020_memberpay"
branch_labels = None
depends_on = None

INDEX = "ix_log_entries_leaf_hash"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(INDEX, table_name="log_entries")
    op.create_index(INDEX, "log_entries", ["leaf_hash"], postgresql_using="hash")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(INDEX, table_name="log_entries")
    op.create_index(INDEX, "log_entries", ["leaf_hash"])
