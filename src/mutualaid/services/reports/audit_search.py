"""Searching the audit log (operators and auditors), newest first, paged by keyset."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from mutualaid.db.models import AuditEvent
from mutualaid.domain.accounts import Role, require_role
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext


@dataclass(frozen=True, slots=True)
class AuditFilter:
    action: str | None = None
    subject_type: str | None = None
    subject_id: int | None = None
    actor_account_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    occurred_at: datetime
    actor_account_id: int | None
    action: str
    subject_type: str
    subject_id: int | None
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuditPage:
    rows: list[AuditRow]
    #: Pass as `before_id` for the next (older) page; None on the last page.
    next_before_id: int | None


def search_audit(
    ctx: ServiceContext,
    actor: Actor,
    where: AuditFilter,
    *,
    before_id: int | None = None,
    limit: int = 50,
) -> AuditPage:
    require_role(actor.role, Role.OPERATOR, Role.AUDITOR)
    limit = max(1, min(limit, 200))
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    if where.action:
        # A prefix: "claim_" finds every claim step.
        query = query.where(AuditEvent.action.startswith(where.action, autoescape=True))
    if where.subject_type:
        query = query.where(AuditEvent.subject_type == where.subject_type)
    if where.subject_id is not None:
        query = query.where(AuditEvent.subject_id == where.subject_id)
    if where.actor_account_id is not None:
        query = query.where(AuditEvent.actor_account_id == where.actor_account_id)
    if where.since is not None:
        query = query.where(AuditEvent.occurred_at >= where.since)
    if where.until is not None:
        query = query.where(AuditEvent.occurred_at < where.until)
    with ctx.reading() as session:
        events = session.scalars(query).all()
    rows = [
        AuditRow(
            e.id,
            e.occurred_at,
            e.actor_account_id,
            e.action,
            e.subject_type,
            e.subject_id,
            dict(e.details or {}),
        )
        for e in events
    ]
    return AuditPage(rows, rows[-1].id if len(rows) == limit else None)
