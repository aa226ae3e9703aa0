"""The database figures an operator watches (/metrics): each one statement on an index.

- members and claims by plan and state: GROUP BY over ix_memberships_plan_state /
  ix_claims_plan_state (an index-only scan on PostgreSQL: it reads the index, never the rows);
- pending notifications and unsequenced log leaves: COUNT over the partial indexes
  ix_notifications_unsent / ix_log_entries_unsequenced, which hold only the pending rows;
- the log's size: the sequencer's one row; the newest published checkpoint: the unique index on
  its size, read backwards, one row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Claim,
    LogCheckpoint,
    LogEntry,
    LogState,
    Membership,
    Notification,
    Plan,
)


def plan_codes(session: Session) -> dict[int, str]:
    return {plan_id: code for plan_id, code in session.execute(select(Plan.id, Plan.code))}


def memberships_by_state(session: Session) -> list[tuple[int, str, int]]:
    """(plan id, state, memberships) for every plan and state that has any."""
    query = select(Membership.plan_id, Membership.state, func.count()).group_by(
        Membership.plan_id, Membership.state
    )
    return [(plan_id, state, count) for plan_id, state, count in session.execute(query)]


def claims_by_state(session: Session) -> list[tuple[int, str, int]]:
    """(plan id, state, claims) for every plan and state that has any."""
    query = select(Claim.plan_id, Claim.state, func.count()).group_by(Claim.plan_id, Claim.state)
    return [(plan_id, state, count) for plan_id, state, count in session.execute(query)]


def pending_notifications(session: Session) -> int:
    """Notifications the outbound channel has not taken yet (dead letters apart)."""
    return (
        session.scalar(
            select(func.count()).where(
                Notification.sent_at.is_(None), Notification.dead_at.is_(None)
            )
        )
        or 0
    )


def dead_notifications(session: Session) -> int:
    """Notifications whose tries are spent, waiting for an operator (ix_notifications_dead)."""
    return session.scalar(select(func.count()).where(Notification.dead_at.is_not(None))) or 0


def unsequenced_leaves(session: Session) -> int:
    """Log leaves queued by a change but not yet given their index by the sequencer."""
    return session.scalar(select(func.count()).where(LogEntry.leaf_index.is_(None))) or 0


def log_size(session: Session) -> int:
    return session.scalar(select(LogState.size).where(LogState.id == 1)) or 0


def last_published_checkpoint(session: Session) -> tuple[int, datetime] | None:
    """(size, published at) of the newest checkpoint published, or None before the first."""
    row = session.execute(
        select(LogCheckpoint.size, LogCheckpoint.published_at)
        .where(LogCheckpoint.published)
        .order_by(LogCheckpoint.size.desc())
        .limit(1)
    ).first()
    if row is None or row.published_at is None:
        return None
    return row.size, row.published_at
