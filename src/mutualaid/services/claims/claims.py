"""A claim's record and its one way to change: loading a claim, its view, and `apply_event`.

Every step of the lifecycle (filing.py, review.py, publicity.py, and the juries and payouts
elsewhere) is one transaction holding the transition, a timeline row the member can read, an
audit row, a transparency-log leaf and the notifications it causes: `apply_event` writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Claim,
    ClaimEventRow,
    Person,
    Plan,
)
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import (
    ClaimEvent,
    ClaimState,
    transition,
)
from mutualaid.domain.errors import NotFound
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.notifications import notify
from mutualaid.services.transparency.log import queue_leaf, unix_seconds

STAFF_REVIEW_ROLES = (Role.REVIEWER, Role.OPERATOR)


@dataclass(frozen=True, slots=True)
class ClaimView:
    ref: str
    plan_code: str
    membership_id: int
    name_masked: str
    state: ClaimState
    illness_code: str
    tier: str
    accident: bool
    diagnosed_on: date
    hospital: str
    age_at_diagnosis: int
    payout_fen: int
    reported_on: date
    investigator_id: int | None
    approver_id: int | None
    decision_reason: str | None
    decision_note: str | None
    publicity_on: date | None
    publicity_closes_at: datetime | None
    approved_at: datetime | None
    #: Paid by the sponsor, never shared (a sponsored scheme, or run-off after a wind-down).
    sponsored: bool = False


def claim_view(claim: Claim, plan_code: str, name_masked: str) -> ClaimView:
    return ClaimView(
        ref=claim.ref,
        plan_code=plan_code,
        membership_id=claim.membership_id,
        name_masked=name_masked,
        state=ClaimState(claim.state),
        illness_code=claim.illness_code,
        tier=claim.tier,
        accident=claim.accident,
        diagnosed_on=claim.diagnosed_on,
        hospital=claim.hospital,
        age_at_diagnosis=claim.age_at_diagnosis,
        payout_fen=claim.payout_fen,
        reported_on=claim.reported_on,
        investigator_id=claim.investigator_id,
        approver_id=claim.approver_id,
        decision_reason=claim.decision_reason,
        decision_note=claim.decision_note,
        publicity_on=claim.publicity_on,
        publicity_closes_at=claim.publicity_closes_at,
        approved_at=claim.approved_at,
        sponsored=claim.sponsored,
    )


def load_claim(
    session: Session, ref: str, *, for_update: bool = True
) -> tuple[Claim, Plan, Person]:
    query = (
        select(Claim, Plan, Person)
        .join(Plan, Plan.id == Claim.plan_id)
        .join(Person, Person.id == Claim.person_id)
        .where(Claim.ref == ref)
    )
    if for_update:
        query = query.with_for_update(of=Claim)
    row = session.execute(query).first()
    if row is None:
        raise NotFound(
            "claim_not_found",
            f"there is no claim {ref}",
            "claim_ref",
            details={"ref": ref},
        )
    return row[0], row[1], row[2]


def require_visible(claim: Claim, actor: Actor) -> None:
    """Members see only their family's claims; staff see all."""
    if actor.role is Role.MEMBER and claim.claimant_account_id != actor.account_id:
        raise NotFound(
            "claim_not_found",
            f"there is no claim {claim.ref}",
            "claim_ref",
            details={"ref": claim.ref},
        )


#: The states that decide a claim: its claim_decision leaf is written on entering one.
DECISION_STATES = frozenset({ClaimState.APPROVED, ClaimState.REJECTED, ClaimState.CLOSED_REJECTED})


_STAGES = {
    ClaimEvent.REJECT: "review",
    ClaimEvent.CLOSE_PUBLICITY: "publicity",
    ClaimEvent.JURY_APPROVES: "jury",
    ClaimEvent.JURY_REJECTS: "jury",
}


def decision_fields(
    claim: Claim,
    plan: Plan,
    event: ClaimEvent,
    after: ClaimState,
    at: datetime,
    reason_code: str | None,
) -> dict[str, Any]:
    """The claim_decision leaf (docs/transparency.md): an approval carries the aid and the
    instant it counts from for the sharing periods (`approved_at`); the auditor of a period takes
    the approvals of its plan decided before its lock (issue 14)."""
    approved = after is ClaimState.APPROVED
    decided_at = claim.approved_at if approved and claim.approved_at is not None else at
    fields: dict[str, Any] = {
        "claim_ref": claim.ref,
        "decision": "approved" if approved else "rejected",
        "aid_fen": claim.payout_fen if approved else 0,
        "decided_at": unix_seconds(decided_at),
        "stage": _STAGES.get(event, str(event)),
        "plan_ref": plan.code,
        "funding": "sponsored" if claim.sponsored else "shared",
    }
    if reason_code:
        fields["reason_code"] = reason_code
    return fields


def apply_event(
    session: Session,
    claim: Claim,
    plan: Plan,
    event: ClaimEvent,
    actor: Actor,
    at: datetime,
    *,
    reason_code: str | None = None,
    public_note: str | None = None,
    internal_note: str | None = None,
) -> ClaimState:
    """One transition with everything that must go with it, in the caller's transaction."""
    before = ClaimState(claim.state)
    after = transition(before, event)
    claim.state = after
    claim.updated_at = at
    session.add(
        ClaimEventRow(
            claim_id=claim.id,
            at=at,
            actor_account_id=actor.recorded_id,
            event=event,
            from_state=before,
            to_state=after,
            reason_code=reason_code,
            public_note=public_note,
            internal_note=internal_note,
        )
    )
    audit.record(
        session,
        at=at,
        actor_account_id=actor.account_id,
        action=f"claim_{event}",
        subject_type="claim",
        subject_id=claim.id,
        ref=claim.ref,
        from_state=str(before),
        to_state=str(after),
        reason_code=reason_code,
    )
    leaf: dict[str, Any] = {
        "claim_ref": claim.ref,
        "event": str(event),
        "state": str(after),
        "at": unix_seconds(at),
        "plan_ref": plan.code,
    }
    if reason_code:
        leaf["reason_code"] = reason_code
    if event in (ClaimEvent.PROPOSE_APPROVAL, ClaimEvent.CLOSE_PUBLICITY, ClaimEvent.JURY_APPROVES):
        leaf["aid_fen"] = claim.payout_fen
    queue_leaf(
        session,
        at=at,
        leaf_type="claim_event",
        fields=leaf,
        subject_type="claim",
        subject_ref=claim.ref,
    )
    if after in DECISION_STATES:
        queue_leaf(
            session,
            at=at,
            leaf_type="claim_decision",
            fields=decision_fields(claim, plan, event, after, at, reason_code),
            subject_type="claim",
            subject_ref=claim.ref,
        )
    notify(
        session,
        at=at,
        account_id=claim.claimant_account_id,
        kind=f"claim_{after}",
        subject_type="claim",
        subject_id=claim.id,
        ref=claim.ref,
        note=public_note,
    )
    return after
