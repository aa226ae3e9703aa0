"""Disputes and referrals open a jury round; a panel is drawn verifiably from a later seed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Claim,
    JuryCase,
    JurySeat,
    LogCheckpoint,
    Plan,
)
from mutualaid.db.queries.plans import rules_of
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.calendars import local_date
from mutualaid.domain.claim_progress import check_dispute_in_time
from mutualaid.domain.claims import ClaimEvent, written
from mutualaid.domain.errors import Conflict, DomainError, NotFound
from mutualaid.domain.juries import (
    candidates_commitment,
    draw_panel,
)
from mutualaid.domain.plans import PlanRules
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.claims.claims import apply_event, load_claim
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import Once, UnitOfWork
from mutualaid.services.juries.eligibility import eligible_jurors
from mutualaid.services.juries.juries import JuryView, juror_ref, jury_view
from mutualaid.services.notifications import notify, notify_many


def open_round(
    session: Session, claim: Claim, plan: Plan, rules: PlanRules, round_no: int, now: datetime
) -> JuryCase:
    jury_rules = rules.jury
    case = JuryCase(
        claim_id=claim.id,
        round=round_no,
        mode=jury_rules.mode,
        referred_at=now,
        status="open" if jury_rules.mode == "open_vote" else "awaiting_seed",
    )
    today = local_date(now, rules.zone)
    if jury_rules.mode == "open_vote":
        case.opens_at, case.closes_at = now, now + timedelta(hours=jury_rules.vote_hours)
        session.add(case)
        session.flush()
        notify_many(
            session,
            at=now,
            account_ids=eligible_jurors(plan.id, today, rules, claim.claimant_account_id),
            kind="jury_vote_open",
            subject_type="jury_case",
            subject_id=case.id,
            payload={"claim_ref": claim.ref, "closes_at": case.closes_at.isoformat()},
        )
    else:
        candidates = [
            juror_ref(a)
            for a in session.scalars(
                eligible_jurors(plan.id, today, rules, claim.claimant_account_id)
            )
        ]
        case.candidates_sha256 = candidates_commitment(candidates)
        case.seats = jury_rules.panel_size
        session.add(case)
        session.flush()
    return case


def dispute_rejection(
    ctx: ServiceContext, actor: Actor, ref: str, reason: str, *, idempotency_key: str | None = None
) -> JuryView:
    """The applicant disputes a rejection: the case goes to a member jury."""
    written(
        reason,
        "reason_required",
        "say why you dispute the decision",
        "reason",
        details={"variant": "dispute"},
    )

    request = {"r": reason}
    once = Once(actor.account_id, idempotency_key, f"dispute:{ref}", request, JuryView)
    with ctx.unit_of_work(once) as uow:
        session = uow.session
        now = ctx.clock.now()
        claim, plan, _ = load_claim(session, ref)
        if claim.claimant_account_id != actor.account_id:
            raise NotFound(
                "claim_not_found",
                f"there is no claim {ref}",
                "claim_ref",
                details={"ref": ref},
            )
        rules = rules_of(session, plan.id, claim.plan_version)
        if claim.decided_at is not None:
            check_dispute_in_time(
                rules, local_date(claim.decided_at, rules.zone), local_date(now, rules.zone)
            )
        apply_event(
            session, claim, plan, ClaimEvent.DISPUTE, actor, now, public_note=reason.strip()
        )
        uow.commit(jury_view(open_round(session, claim, plan, rules, 1, now), claim.ref))
    return uow.result


def refer_to_jury(
    ctx: ServiceContext,
    actor: Actor,
    ref: str,
    note: str,
    *,
    idempotency_key: str | None = None,
) -> JuryView:
    """An operator refers a contested case (in re-review or publicity) to a jury."""
    require_role(actor.role, Role.OPERATOR)
    written(note, "note_required", "say why the case goes to a member jury", "note")
    once = Once(actor.account_id, idempotency_key, f"refer:{ref}", {"note": note}, JuryView)
    uow: UnitOfWork[JuryView] = ctx.unit_of_work(once)
    with uow:
        session = uow.session
        now = ctx.clock.now()
        claim, plan, _ = load_claim(session, ref)
        rules = rules_of(session, plan.id, claim.plan_version)
        apply_event(
            session,
            claim,
            plan,
            ClaimEvent.REFER_TO_JURY,
            actor,
            now,
            internal_note=note,
            public_note="the case was referred to a member jury",
        )
        next_round = (
            session.scalar(select(func.max(JuryCase.round)).where(JuryCase.claim_id == claim.id))
            or 0
        ) + 1
        uow.commit(jury_view(open_round(session, claim, plan, rules, next_round, now), claim.ref))
    return uow.result


def seat_panel(
    ctx: ServiceContext, jury_case_id: int, seed: bytes, seed_tree_size: int
) -> JuryView:
    """Draw the panel from a seed no one knew at referral: a checkpoint root published after it.

    Anyone with the candidate list (committed at referral), the seed and the case ref can redo the
    draw with `mutualaid.domain.juries.draw_panel`.
    """
    uow: UnitOfWork[JuryView] = ctx.unit_of_work()
    with uow:
        session = uow.session
        now = ctx.clock.now()
        case = session.get(JuryCase, jury_case_id, with_for_update=True)
        if case is None:
            raise NotFound(
                "jury_not_found", f"there is no jury case {jury_case_id}", "jury_case_id"
            )
        if case.status != "awaiting_seed":
            raise Conflict("already_seated", "this panel has been drawn", "jury_case_id")
        claim = session.get(Claim, case.claim_id)
        assert claim is not None
        rules = rules_of(session, claim.plan_id, claim.plan_version)
        today = local_date(now, rules.zone)
        accounts = list(
            session.scalars(eligible_jurors(claim.plan_id, today, rules, claim.claimant_account_id))
        )
        by_ref = {juror_ref(a): a for a in accounts}
        earlier = set(
            session.scalars(
                select(JurySeat.juror_ref)
                .join(JuryCase, JuryCase.id == JurySeat.jury_case_id)
                .where(JuryCase.claim_id == claim.id)
            )
        )
        drawn = draw_panel(seed, claim.ref, sorted(by_ref), case.seats, frozenset(earlier))
        if not drawn:
            raise DomainError("no_jurors", "no eligible jurors to draw from", "jury_case_id")
        case.seed_hex, case.seed_tree_size = seed.hex(), seed_tree_size
        case.status, case.opens_at = "open", now
        case.closes_at = now + timedelta(hours=rules.jury.vote_hours)
        for ref in drawn:
            session.add(
                JurySeat(
                    jury_case_id=case.id, juror_account_id=by_ref[ref], juror_ref=ref, drawn_at=now
                )
            )
            notify(
                session,
                at=now,
                account_id=by_ref[ref],
                kind="jury_vote_open",
                subject_type="jury_case",
                subject_id=case.id,
                claim_ref=claim.ref,
                closes_at=case.closes_at.isoformat(),
            )
        audit.record(
            session,
            at=now,
            actor_account_id=None,
            action="jury_panel_drawn",
            subject_type="jury_case",
            subject_id=case.id,
            seats=len(drawn),
            seed=case.seed_hex,
            seed_tree_size=seed_tree_size,
        )
        uow.commit(jury_view(case, claim.ref))
    return uow.result


@dataclass(frozen=True, slots=True)
class SeatingRun:
    seated: int
    waiting: int


def seat_waiting_panels(ctx: ServiceContext) -> SeatingRun:
    """Draw every panel whose seed now exists: the root of the FIRST checkpoint published after
    the case was referred. Nobody (the operator included) could know that root at referral, and
    anyone can find the same checkpoint again and redo the draw. Run it after each checkpoint."""
    with ctx.reading() as session:
        waiting = session.execute(
            select(JuryCase.id, JuryCase.referred_at)
            .where(JuryCase.status == "awaiting_seed")
            .order_by(JuryCase.id)
        ).all()
        seeds = [
            (
                case_id,
                session.execute(
                    select(LogCheckpoint.root_hash, LogCheckpoint.size)
                    .where(LogCheckpoint.published, LogCheckpoint.published_at > referred_at)
                    .order_by(LogCheckpoint.published_at, LogCheckpoint.size)
                    .limit(1)
                ).first(),
            )
            for case_id, referred_at in waiting
        ]
    seated = 0
    for case_id, seed in seeds:
        if seed is None:
            continue
        try:
            seat_panel(ctx, case_id, bytes(seed.root_hash), seed.size)
            seated += 1
        except Conflict:
            pass  # another worker drew it first: the same draw, from the same seed
    return SeatingRun(seated=seated, waiting=len(waiting) - seated)


# --- the juror's side -----------------------------------------------------------------------------
