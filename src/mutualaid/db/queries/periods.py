"""Periods' queries where PostgreSQL and SQLite part ways: the plan test that keeps SQLite's
planner on a scan, streaming membership rows in chunks, and packing a range's integers into one
string in the database (the charges tree's scan)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, LargeBinary, Select, func, literal
from sqlalchemy.orm import Session

from mutualaid.db.models import Membership


def membership_plan_is(session: Session, plan_id: int, *, scan: bool = True) -> ColumnElement[bool]:
    """``memberships.plan_id = plan_id``; with `scan` (the default) written ``plan_id + 0`` on
    SQLite, which has no statistics and would otherwise pick the (plan_id, state) index for any
    query with this test: walking it and fetching each row by id is 1.6× slower than reading the
    table in order, and far slower than the id, payer or failure lookups the other queries want
    (and a keyset walk on the primary key would become a scan and a sort of the whole plan per
    chunk). Pass ``scan=False`` only when that index is the right one (a state lookup).
    PostgreSQL decides from its statistics either way."""
    if scan and session.get_bind().dialect.name == "sqlite":
        return Membership.plan_id + 0 == plan_id
    return Membership.plan_id == plan_id


def stream_rows(
    session: Session, stmt: Select[Any], chunk: int, *, first_column: bool = False
) -> Iterator[Sequence[Any]]:
    """The rows of `stmt` in batches of at most `chunk`, read as the database sends them (memory
    stays flat); with `first_column`, each row is its first column alone."""
    connection = session.connection()
    batches: Iterator[Sequence[Any]]
    if session.get_bind().dialect.name == "sqlite":
        # pysqlite steps through the result as it is fetched: read the driver's cursor directly
        # (one value per row needs no tuple: a third faster).
        result = connection.execute(stmt)
        cursor: Any = result.cursor
        if first_column:
            cursor.row_factory = _first_column
        batches = iter(lambda: cursor.fetchmany(chunk), [])
    else:
        result = connection.execution_options(stream_results=True, yield_per=chunk).execute(stmt)
        batches = result.scalars().partitions(chunk) if first_column else result.partitions(chunk)
    try:
        yield from batches
    finally:
        result.close()


def _first_column(_cursor: Any, row: tuple[Any, ...]) -> Any:
    return row[0]


def packed_int8(session: Session, *columns: ColumnElement[Any]) -> ColumnElement[Any]:
    """An aggregate of the rows' integer `columns` as one string: each row's values as big-endian
    8-byte integers, rows in no promised order (the caller sorts). PostgreSQL concatenates
    ``int8send``; SQLite, which has no binary formatting, concatenates 16 hex digits per value
    (`unpacked` turns either into bytes). One row per range instead of one per member: the
    driver makes no Python object per row."""
    if session.get_bind().dialect.name == "sqlite":
        return func.group_concat(func.printf("%016x" * len(columns), *columns), "")
    row: ColumnElement[Any] = func.int8send(columns[0])
    for column in columns[1:]:
        row = row.op("||")(func.int8send(column))
    return func.string_agg(row, literal(b"", LargeBinary()))


def unpacked(packed: bytes | str | None) -> bytes:
    """The bytes of a `packed_int8` value (b"" for an empty range)."""
    if packed is None:
        return b""
    if isinstance(packed, str):
        return bytes.fromhex(packed)
    return bytes(packed)
