"""Closing due votes: tally, decide, move the claim, or start a new round (up to the plan's limit)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from mutualaid.db.models import (
    JuryCase,
    JuryVote,
)
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.claims import NOTE_JURY_TALLY, NOTE_JURY_TOO_FEW, ClaimEvent
from mutualaid.domain.juries import (
    JuryOutcome,
    Tally,
    decide,
)
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.claims.claims import apply_event
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import UnitOfWork
from mutualaid.services.juries.panels import open_round
from mutualaid.services.juries.votes import case_parts
from mutualaid.services.transparency.log import queue_leaf, unix_seconds


@dataclass(frozen=True, slots=True)
class JuryCloseRun:
    closed: int
    approved: int
    rejected: int
    new_rounds: int
    inconclusive: int


def close_due_juries(ctx: ServiceContext, actor: Actor) -> JuryCloseRun:
    """Close every vote whose window has passed: tally, decide, move the claim, or start a new round."""
    require_role(actor.role, Role.OPERATOR)
    closed = approved = rejected = new_rounds = inconclusive = 0
    uow: UnitOfWork[JuryCloseRun] = ctx.unit_of_work()
    with uow:
        session = uow.session
        now = ctx.clock.now()
        due = session.scalars(
            select(JuryCase)
            .where(JuryCase.status == "open", JuryCase.closes_at <= now)
            .order_by(JuryCase.id)
            .with_for_update()
        ).all()
        for case in due:
            counts = dict(
                session.execute(
                    select(JuryVote.choice, func.count())
                    .where(JuryVote.jury_case_id == case.id)
                    .group_by(JuryVote.choice)
                ).all()
            )
            tally = Tally(approve=counts.get("approve", 0), reject=counts.get("reject", 0))
            claim, plan, rules, _ = case_parts(session, case)
            outcome = decide(tally, rules.jury, seats=case.seats or None)
            case.status, case.outcome = "closed", str(outcome)
            case.approve_votes, case.reject_votes = tally.approve, tally.reject
            case.recusals = counts.get("recuse", 0)
            closed += 1
            queue_leaf(
                session,
                at=now,
                leaf_type="jury_result",
                subject_type="claim",
                subject_ref=claim.ref,
                fields={
                    "claim_ref": claim.ref,
                    "jury_ref": f"J{case.id}",
                    "votes_for": tally.approve,
                    "votes_against": tally.reject,
                    "outcome": "no_quorum"
                    if outcome is JuryOutcome.TOO_FEW_VOTES
                    else str(outcome),
                    "closed_at": unix_seconds(now),
                },
            )
            note = NOTE_JURY_TALLY.format(
                approve=tally.approve, reject=tally.reject, recused=case.recusals
            )
            if outcome is JuryOutcome.APPROVED:
                claim.approved_at = now
                apply_event(
                    session, claim, plan, ClaimEvent.JURY_APPROVES, actor, now, public_note=note
                )
                approved += 1
            elif outcome is JuryOutcome.REJECTED:
                apply_event(
                    session, claim, plan, ClaimEvent.JURY_REJECTS, actor, now, public_note=note
                )
                rejected += 1
            elif case.round < rules.jury.max_rounds:
                open_round(session, claim, plan, rules, case.round + 1, now)
                new_rounds += 1
            else:
                apply_event(
                    session,
                    claim,
                    plan,
                    ClaimEvent.JURY_INCONCLUSIVE,
                    actor,
                    now,
                    public_note=NOTE_JURY_TOO_FEW.format(rounds=case.round),
                )
                inconclusive += 1
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="juries_closed",
            subject_type="jury_case",
            subject_id=None,
            closed=closed,
        )
        uow.commit(JuryCloseRun(closed, approved, rejected, new_rounds, inconclusive))
    return uow.result
