"""The worker's run rows: created once whichever worker sees a due instant first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mutualaid.db.models import ScheduledRun


def insert_run_if_absent(session: Session, values: Mapping[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on UNIQUE(job, scope, due_at): True if this call made it."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    result = session.execute(insert(ScheduledRun).values(**values).on_conflict_do_nothing())
    return bool(getattr(result, "rowcount", 0))
