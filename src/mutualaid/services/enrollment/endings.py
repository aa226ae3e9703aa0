"""Ending one membership inside another use case's transaction (an illness in the waiting
period, claims/filing.py; an age-out move, moves.py): the state, the end reason, the audit row and
the `membership_event` leaf, together."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from mutualaid.db.models import Membership
from mutualaid.domain.memberships import END_REASONS, MembershipEvent, MembershipState, transition
from mutualaid.services import audit
from mutualaid.services.enrollment.membership_leaves import queue_membership_event


def end_membership(
    session: Session,
    membership: Membership,
    event: MembershipEvent,
    *,
    plan_ref: str,
    at: datetime,
    effective_at: datetime,
    actor_account_id: int | None,
    **details: object,
) -> None:
    """End `membership` by `event`, effective at `effective_at`, recorded at `at`."""
    before = MembershipState(membership.state)
    membership.state = transition(before, event)
    membership.ended_at = effective_at
    membership.end_reason = END_REASONS[event]
    audit.record(
        session,
        at=at,
        actor_account_id=actor_account_id,
        action=f"membership_{event}",
        subject_type="membership",
        subject_id=membership.id,
        from_state=str(before),
        to_state=str(membership.state),
        **details,
    )
    queue_membership_event(
        session,
        at=at,
        plan_ref=plan_ref,
        membership_id=membership.id,
        event=event,
        state=membership.state,
        occurred_at=effective_at,
    )
