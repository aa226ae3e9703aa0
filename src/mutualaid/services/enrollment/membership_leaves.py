"""Memberships on the transparency log (issue 14): one `membership_event` leaf per join and per
change of state, queued in the transaction of the change, never naming the person.

`occurred_at` is the instant the change takes effect: the join's instant, the start of the day a
waiting period ends or an exit age is reached (in the plan's zone), otherwise the instant of the
change. An auditor replays these leaves to find who shared in a period (docs/transparency.md,
"Auditing a period"). Bulk paths queue theirs set-based: `MembershipLeaves` collects a loop's
leaves for one `queue_leaves` (removals after failed payments), the CSV import writes one join
leaf per row in its chunk's statements (`insert_membership_event_leaves` on SQLite), and the
daily job and the end of cover write `membership_events` batch leaves — one per event, effective
day and up to 4,000 memberships — in the statement of their UPDATE
(`db.queries.memberships.advance_with_leaves`, `end_cover_with_leaves`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from mutualaid.services.transparency.log import PendingLeaf, queue_leaf, queue_leaves, unix_seconds
from mutualaid.transparency.leaves import membership_event_leaf, membership_ref

LEAF_TYPE = "membership_event"
SUBJECT_TYPE = "membership"


def queue_membership_event(
    session: Session,
    *,
    at: datetime,
    plan_ref: str,
    membership_id: int,
    event: str,
    state: str,
    occurred_at: datetime,
) -> None:
    """Queue one membership's event in the caller's transaction (checked against the schema)."""
    queue_leaf(
        session,
        at=at,
        leaf_type=LEAF_TYPE,
        fields={
            "plan_ref": plan_ref,
            "membership_ref": membership_ref(membership_id),
            "event": event,
            "state": state,
            "occurred_at": unix_seconds(occurred_at),
        },
        subject_type=SUBJECT_TYPE,
        subject_ref=membership_ref(membership_id),
    )


class MembershipLeaves:
    """The membership events of one loop over rows, queued together with one round trip."""

    def __init__(self, plan_ref: str) -> None:
        self.plan_ref = plan_ref
        self.pending: list[PendingLeaf] = []

    def add(self, membership_id: int, event: str, state: str, occurred_at: datetime) -> None:
        self.pending.append(
            PendingLeaf.of(
                LEAF_TYPE,
                {
                    "plan_ref": self.plan_ref,
                    "membership_ref": membership_ref(membership_id),
                    "event": event,
                    "state": state,
                    "occurred_at": unix_seconds(occurred_at),
                },
                SUBJECT_TYPE,
                membership_ref(membership_id),
            )
        )

    def queue(self, session: Session, at: datetime) -> int:
        queued = queue_leaves(session, at=at, leaves=self.pending)
        self.pending = []
        return queued


def membership_leaf(
    plan_ref: str, membership_id: int, event: str, state: str, occurred_at: datetime
) -> PendingLeaf:
    """A membership_event leaf built without the schema walk (the join's hot path)."""
    return PendingLeaf(
        LEAF_TYPE,
        membership_event_leaf(plan_ref, membership_id, event, state, unix_seconds(occurred_at)),
        SUBJECT_TYPE,
        membership_ref(membership_id),
    )
