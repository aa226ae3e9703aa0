"""The transparency log's tables in bulk: leaf rows, stored tiles, the one-row state, checkpoints.

Each function is one operation with its dialect branch inside: COPY (FORMAT BINARY) and
``unnest`` arrays on PostgreSQL, the driver's ``executemany`` on SQLite. Both go straight to the
driver's cursor: millions of leaves a run leave no room for per-row SQLAlchemy work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg.types.string import BytesBinaryDumper
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mutualaid.db.models import LogCheckpoint, LogEntry, LogState

#: (leaf_type, leaf_data, subject_type, subject_ref): what a producer hands the log (a
#: `PendingLeaf` is one).
Leaf = tuple[str, bytes, str, str]
#: (tile level, tile index, hashes)
TileRow = tuple[int, int, bytes]

_QUEUED_COLUMNS = "leaf_type, leaf_data, leaf_hash, subject_type, subject_ref, queued_at"
_NUMBERED_COLUMNS = (
    "leaf_type, leaf_data, leaf_hash, leaf_index, subject_type, subject_ref, queued_at"
)


def _postgres(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


def fast_bytea(cursor: Any) -> Any:
    """`cursor`, its COPYs dumping ``bytes`` as bytea with psycopg's compiled dumper.

    ``set_types([..., "bytea", ...])`` otherwise picks the last dumper registered for bytea,
    `psycopg.dbapi20`'s, a Python subclass (to accept ``Binary`` too) that costs a Python call per
    value; the bytes sent are the same. The change is local to this cursor.
    """
    cursor.adapters.register_dumper(bytes, BytesBinaryDumper)
    return cursor


def _sqlite_instant(dialect: Any, at: datetime) -> Any:
    """`at` as SQLAlchemy would bind it to log_entries.queued_at (a text instant on SQLite)."""
    column_type = LogEntry.__table__.c.queued_at.type
    process = column_type.dialect_impl(dialect).bind_processor(dialect)
    return process(at) if process else at


def insert_queued_leaves(
    session: Session, at: datetime, leaves: Sequence[Leaf], hashes: Sequence[bytes]
) -> None:
    """Insert leaves not yet numbered (the outbox), queued at `at`, in one round trip."""
    connection = session.connection()
    raw: Any = connection.connection.driver_connection
    if _postgres(connection):
        with (
            fast_bytea(raw.cursor()) as cursor,
            cursor.copy(f"COPY log_entries ({_QUEUED_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(["varchar", "bytea", "bytea", "varchar", "varchar", "timestamptz"])
            for (leaf_type, data, subject_type, subject_ref), hashed in zip(
                leaves, hashes, strict=True
            ):
                copy.write_row((leaf_type, data, hashed, subject_type, subject_ref, at))
    else:
        stamp = _sqlite_instant(connection.dialect, at)
        cursor = raw.cursor()
        try:
            cursor.executemany(
                f"INSERT INTO log_entries ({_QUEUED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (leaf_type, data, hashed, subject_type, subject_ref, stamp)
                    for (leaf_type, data, subject_type, subject_ref), hashed in zip(
                        leaves, hashes, strict=True
                    )
                ],
            )
        finally:
            cursor.close()


def insert_numbered_leaves(
    session: Session,
    at: datetime,
    leaves: Sequence[Leaf],
    hashes: Sequence[bytes],
    first_index: int,
) -> None:
    """Insert leaves already numbered `first_index`, `first_index` + 1, ..., queued at `at`, in
    one round trip."""
    connection = session.connection()
    raw: Any = connection.connection.driver_connection
    if _postgres(connection):
        with (
            fast_bytea(raw.cursor()) as cursor,
            cursor.copy(
                f"COPY log_entries ({_NUMBERED_COLUMNS}) FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(
                ["varchar", "bytea", "bytea", "int8", "varchar", "varchar", "timestamptz"]
            )
            for position, (leaf_type, data, subject_type, subject_ref) in enumerate(leaves):
                copy.write_row(
                    (
                        leaf_type,
                        data,
                        hashes[position],
                        first_index + position,
                        subject_type,
                        subject_ref,
                        at,
                    )
                )
    else:
        stamp = _sqlite_instant(connection.dialect, at)
        cursor = raw.cursor()
        try:
            cursor.executemany(
                f"INSERT INTO log_entries ({_NUMBERED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        leaf_type,
                        data,
                        hashes[position],
                        first_index + position,
                        subject_type,
                        subject_ref,
                        stamp,
                    )
                    for position, (leaf_type, data, subject_type, subject_ref) in enumerate(leaves)
                ],
            )
        finally:
            cursor.close()


def read_tiles(session: Session, wanted: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """Stored tiles by (tile level, tile index); missing ones are left out."""
    connection = session.connection()
    raw: Any = connection.connection.driver_connection
    if _postgres(connection):
        with raw.cursor() as cursor:
            cursor.execute(
                "SELECT t.level, t.idx, t.hashes FROM log_tiles AS t "
                "JOIN unnest(%s::integer[], %s::bigint[]) AS wanted(level, idx) "
                "ON t.level = wanted.level AND t.idx = wanted.idx",
                ([t for t, _ in wanted], [j for _, j in wanted]),
            )
            rows = cursor.fetchall()
    else:
        cursor = raw.cursor()
        try:
            rows = cursor.execute(
                "SELECT level, idx, hashes FROM log_tiles WHERE "
                + " OR ".join(["(level = ? AND idx = ?)"] * len(wanted)),
                [value for pair in wanted for value in pair],
            ).fetchall()
        finally:
            cursor.close()
    return {(level, index): bytes(data) for level, index, data in rows}


def read_size_and_tiles(
    connection: Connection, wanted: Sequence[tuple[int, int]]
) -> list[tuple[int, int, Any]]:
    """One round trip: the row (-1, log size, NULL), then (level, idx, hashes) of each stored
    tile in `wanted` (missing ones are left out)."""
    raw: Any = connection.connection.driver_connection
    if _postgres(connection):
        with raw.cursor() as cursor:
            cursor.execute(_PG_SIZE_AND_TILES, ([t for t, _ in wanted], [j for _, j in wanted]))
            rows: list[tuple[int, int, Any]] = cursor.fetchall()
            return rows
    cursor = raw.cursor()
    try:
        rows = cursor.execute(
            "SELECT -1, size, NULL FROM log_state UNION ALL "
            "SELECT level, idx, hashes FROM log_tiles WHERE "
            + " OR ".join(["(level = ? AND idx = ?)"] * len(wanted)),
            [value for pair in wanted for value in pair],
        ).fetchall()
    finally:
        cursor.close()
    return rows


_PG_SIZE_AND_TILES = (
    "SELECT -1, size, NULL::bytea FROM log_state "
    "UNION ALL "
    "SELECT t.level, t.idx, t.hashes FROM log_tiles AS t "
    "JOIN unnest(%s::integer[], %s::bigint[]) AS wanted(level, idx) "
    "ON t.level = wanted.level AND t.idx = wanted.idx"
)


def store_tiles(
    session: Session, replaced: Sequence[tuple[int, int]], tiles: Sequence[TileRow]
) -> None:
    """Write `tiles`, replacing the stored tiles at (level, idx) in `replaced` (the partial ones
    they grow from; every other tile in `tiles` is new)."""
    connection = session.connection()
    raw: Any = connection.connection.driver_connection
    if _postgres(connection):
        with fast_bytea(raw.cursor()) as cursor:
            if replaced:
                cursor.execute(
                    "DELETE FROM log_tiles WHERE (level, idx) IN "
                    "(SELECT * FROM unnest(%s::integer[], %s::bigint[]))",
                    ([t for t, _ in replaced], [j for _, j in replaced]),
                )
            with cursor.copy(
                "COPY log_tiles (level, idx, hashes) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["int4", "int8", "bytea"])
                for tile in tiles:
                    copy.write_row(tile)
    else:
        cursor = raw.cursor()
        try:
            cursor.executemany(
                "INSERT OR REPLACE INTO log_tiles (level, idx, hashes) VALUES (?, ?, ?)", tiles
            )
        finally:
            cursor.close()


def insert_log_state(session: Session, values: Mapping[str, Any]) -> None:
    """Insert the log's one state row unless a concurrent sequencer just did."""
    _insert_if_absent(session, LogState, values)


def insert_checkpoint(session: Session, values: Mapping[str, Any]) -> None:
    """Insert a checkpoint row unless one at its size was just inserted concurrently."""
    _insert_if_absent(session, LogCheckpoint, values)


def _insert_if_absent(session: Session, model: Any, values: Mapping[str, Any]) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(model).values(**values).on_conflict_do_nothing())
