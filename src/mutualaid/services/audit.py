"""Audit rows, written inside the transaction of the change they describe."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from mutualaid.db.models import AuditEvent

#: Built once: a statement with bound parameters skips SQLAlchemy's per-call work.
INSERT = insert(AuditEvent)


def audit_row(
    *,
    at: datetime,
    actor_account_id: int | None,
    action: str,
    subject_type: str,
    subject_id: int | None,
    **details: Any,
) -> dict[str, Any]:
    """The values of one audit row (for `INSERT`, alone or as part of a larger statement)."""
    return {
        "occurred_at": at,
        # Account id 0 is the system itself (the CLI, scheduled jobs): no account row.
        "actor_account_id": actor_account_id or None,
        "action": action,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "details": details,
    }


def record(
    session: Session,
    *,
    at: datetime,
    actor_account_id: int | None,
    action: str,
    subject_type: str,
    subject_id: int | None,
    **details: Any,
) -> None:
    # A prepared Core INSERT, sent now: far cheaper than an ORM object flushed later, and nothing
    # reads the row back.
    session.connection().execute(
        INSERT,
        audit_row(
            at=at,
            actor_account_id=actor_account_id,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            **details,
        ),
    )
