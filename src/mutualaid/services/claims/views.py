"""Reading claims: one claim, its timeline, and the staff work queues (read-only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select

from mutualaid.db.models import (
    Claim,
    ClaimEventRow,
    Evidence,
    Objection,
    Plan,
)
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import (
    ClaimState,
)
from mutualaid.domain.errors import Forbidden
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.claims.claims import ClaimView, claim_view, load_claim, require_visible
from mutualaid.services.context import ServiceContext


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    event: str
    state: str
    reason_code: str | None
    note: str | None


def get_claim(ctx: ServiceContext, actor: Actor, ref: str) -> ClaimView:
    with ctx.reading() as session:
        claim, plan, person = load_claim(session, ref, for_update=False)
        require_visible(claim, actor)
        return claim_view(claim, plan.code, person.name_masked)


def claim_timeline(ctx: ServiceContext, actor: Actor, ref: str) -> list[TimelineEntry]:
    """What happened to a claim; members see the public notes, staff also the internal ones."""
    with ctx.reading() as session:
        claim, _, _ = load_claim(session, ref, for_update=False)
        require_visible(claim, actor)
        rows = session.scalars(
            select(ClaimEventRow)
            .where(ClaimEventRow.claim_id == claim.id)
            .order_by(ClaimEventRow.id)
        ).all()
        staff = actor.role is not Role.MEMBER
        return [
            TimelineEntry(
                r.at,
                r.event,
                r.to_state,
                r.reason_code,
                (r.internal_note or r.public_note) if staff else r.public_note,
            )
            for r in rows
        ]


@dataclass(frozen=True, slots=True)
class QueueItem:
    ref: str
    plan_code: str
    state: str
    illness_code: str
    payout_fen: int
    reported_on: date
    investigator_id: int | None
    evidence_count: int
    pending_objections: int


def work_queue(
    ctx: ServiceContext,
    actor: Actor,
    *,
    states: list[ClaimState] | None = None,
    plan_code: str | None = None,
    assigned_to_me: bool = False,
    after_id: int = 0,
    limit: int = 50,
) -> list[QueueItem]:
    """Staff work queues, filtered by state, plan and assignment, paged by keyset."""
    if actor.role is Role.MEMBER:
        raise Forbidden("forbidden", "work queues are for staff", details={"variant": "staff"})
    evidence = (
        select(Evidence.claim_id, func.count().label("n")).group_by(Evidence.claim_id).subquery()
    )
    objections = (
        select(Objection.claim_id, func.count().label("n"))
        .where(Objection.state == "pending")
        .group_by(Objection.claim_id)
        .subquery()
    )
    query = (
        select(Claim, Plan.code, func.coalesce(evidence.c.n, 0), func.coalesce(objections.c.n, 0))
        .join(Plan, Plan.id == Claim.plan_id)
        .outerjoin(evidence, evidence.c.claim_id == Claim.id)
        .outerjoin(objections, objections.c.claim_id == Claim.id)
        .where(Claim.id > after_id)
        .order_by(Claim.id)
        .limit(max(1, min(limit, 200)))
    )
    if states:
        query = query.where(Claim.state.in_([str(s) for s in states]))
    if plan_code:
        query = query.where(Plan.code == plan_code)
    if assigned_to_me:
        query = query.where(Claim.investigator_id == actor.account_id)
    with ctx.reading() as session:
        return [
            QueueItem(
                c.ref,
                code,
                c.state,
                c.illness_code,
                c.payout_fen,
                c.reported_on,
                c.investigator_id,
                int(n_evidence),
                int(n_objections),
            )
            for c, code, n_evidence, n_objections in session.execute(query).all()
        ]
