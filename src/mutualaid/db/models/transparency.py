"""The transparency log: entries, sequencer state, stored tiles, checkpoints, witnesses."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from mutualaid.db.models.base import Base, Id, UtcDateTime


class LogEntry(Base):
    """A leaf of the transparency log, queued in the transaction of the change it records.

    This table is the outbox: a change and its leaf commit (or roll back) together. The sequencer
    later gives queued leaves their `leaf_index` (a single writer, so no gaps and no duplicates).
    """

    __tablename__ = "log_entries"
    __table_args__ = (
        Index("ix_log_entries_subject", "subject_type", "subject_ref"),
        # Looked up by equality only; a hash index on PostgreSQL (random keys: a B-tree made
        # every append touch random pages of a large index; issue 20), a B-tree on SQLite.
        Index("ix_log_entries_leaf_hash", "leaf_hash", postgresql_using="hash"),
        Index(
            "ix_log_entries_unsequenced",
            "id",
            sqlite_where=text("leaf_index IS NULL"),
            postgresql_where=text("leaf_index IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    leaf_type: Mapped[str] = mapped_column(String(40))
    leaf_data: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    leaf_index: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    subject_type: Mapped[str] = mapped_column(String(30))
    subject_ref: Mapped[str] = mapped_column(String(80))
    queued_at: Mapped[datetime] = mapped_column(UtcDateTime())


# --- transparency log: sequencer state, stored tree nodes, checkpoints (issue 3) ------------------


class LogState(Base):
    """The sequencer's state: one row (id 1), locked FOR UPDATE by whoever integrates leaves.

    `compact_range` is the concatenation of the 32-byte perfect-subtree roots covering
    [0, size) (tallest first), all the sequencer needs to append and to compute the root.
    """

    __tablename__ = "log_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    compact_range: Mapped[bytes] = mapped_column(LargeBinary)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class LogTile(Base):
    """The Merkle tree, stored in tiles of 4 levels (`transparency.tiles.STORAGE_HEIGHT`).

    Tile (level t, idx j) holds the nodes of tree level 4t with indexes 16j..16j+15 (level 0:
    the leaf hashes) and the complete nodes above them inside that subtree, bottom row first
    (`tiles.encode_storage_tile`). Full tiles never change; the sequencer rewrites the rightmost,
    partial tile of each level as the log grows. A proof reads one row per 4 tree levels.
    """

    __tablename__ = "log_tiles"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hashes: Mapped[bytes] = mapped_column(LargeBinary)


class LogCheckpoint(Base):
    """A signed checkpoint (C2SP tlog-checkpoint) with the cosignatures gathered for it.

    `published` once `quorum` witnesses cosigned; the keys are recorded as they were configured
    when it was signed, so a proof bundle can be served from this row alone.
    """

    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, unique=True)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    log_key: Mapped[str] = mapped_column(String(300))
    witness_keys: Mapped[list[str]] = mapped_column(JSON, default=list)
    quorum: Mapped[int] = mapped_column(Integer)
    cosigners: Mapped[int] = mapped_column(Integer, default=0)
    published: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class LogWitnessState(Base):
    """The size of the last checkpoint each witness is known to have cosigned (tlog-witness "old")."""

    __tablename__ = "log_witness_states"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
