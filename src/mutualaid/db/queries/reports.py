"""SQL the reports need that the two databases spell differently: calendar months and elapsed hours.

Everything is an expression for a GROUP BY, so the database does the bucketing and the report reads a
handful of rows whatever the number of members.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, cast, func
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement


def month_of_date(column: InstrumentedAttribute[date], dialect: str) -> ColumnElement[str]:
    """'YYYY-MM' of a DATE column (calendar dates are already in the plan's zone)."""
    if dialect == "postgresql":
        return func.to_char(column, "YYYY-MM")
    return func.substr(column, 1, 7)


def month_of_instant(
    column: InstrumentedAttribute[datetime] | InstrumentedAttribute[datetime | None],
    dialect: str,
    zone: ZoneInfo,
    near: datetime,
) -> ColumnElement[str]:
    """'YYYY-MM' of a UTC instant column, in `zone`.

    PostgreSQL converts with the zone's full rules. SQLite knows no zones: it shifts by the zone's
    offset at `near` (exact for zones without daylight saving time, such as Asia/Shanghai).
    """
    if dialect == "postgresql":
        return func.to_char(func.timezone(zone.key, column), "YYYY-MM")
    offset = near.astimezone(zone).utcoffset()
    seconds = int(offset.total_seconds()) if offset else 0
    return func.strftime("%Y-%m", column, f"{seconds:+d} seconds")


def hours_between(
    start: InstrumentedAttribute[datetime],
    end: InstrumentedAttribute[datetime] | InstrumentedAttribute[datetime | None],
    dialect: str,
) -> ColumnElement[int]:
    """Whole hours from `start` to `end` (both UTC instants), rounded down."""
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", end - start) / 3600), Integer)
    # julianday() is a float of days: a microsecond's nudge keeps exactly 24 h from reading 23.
    return cast((func.julianday(end) - func.julianday(start)) * 24 + 1e-6, Integer)
