"""Filing a claim: a member reports it for a covered family member, or withdraws it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Claim,
    ClaimEventRow,
    Membership,
    MembershipRefund,
    Person,
    Plan,
)
from mutualaid.db.queries.plans import rules_of
from mutualaid.domain.calendars import age_in_years, local_date
from mutualaid.domain.claims import (
    MAX_HOSPITAL_CHARS,
    NOTE_WAITING_ILLNESS,
    OPEN_STATES,
    WAITING_PERIOD_OUTCOME,
    ClaimEvent,
    ClaimFacts,
    ClaimState,
    RejectionReason,
    filing_refusal,
    payout_for,
    written,
)
from mutualaid.domain.errors import Conflict, DomainError, Forbidden, NotFound
from mutualaid.domain.memberships import (
    CoverageDates,
    MembershipEvent,
    MembershipState,
    state_on,
)
from mutualaid.domain.risk import ClaimLinks
from mutualaid.domain.schemes import SchemeClaim
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.claims.claims import (
    ClaimView,
    apply_event,
    claim_view,
    load_claim,
    require_visible,
)
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.endings import end_membership
from mutualaid.services.idempotency import Once
from mutualaid.services.notifications.outbox import notify
from mutualaid.services.plans.schemes import plan_claim_sponsored, scheme_terms
from mutualaid.services.risk import risk
from mutualaid.services.transparency.log import queue_leaf, unix_seconds


@dataclass(frozen=True, slots=True)
class ClaimReport:
    membership_id: int
    illness_code: str
    diagnosed_on: date
    hospital: str
    accident: bool = False
    #: File under this sponsored scheme of the plan (issue 8) instead of the plan's own cover.
    scheme_code: str | None = None
    #: Optional contacts, payee, device and doctor, for the risk signals (issue 9).
    links: ClaimLinks | None = None


def report_claim(
    ctx: ServiceContext, actor: Actor, report: ClaimReport, *, idempotency_key: str | None = None
) -> ClaimView:
    """A member (the family's account holder) reports a claim for a covered family member."""
    hospital = written(
        report.hospital,
        "invalid_hospital",
        "name the hospital (1 to 200 characters)",
        "hospital",
        max_chars=MAX_HOSPITAL_CHARS,
    )

    request = {
        "membership": report.membership_id,
        "illness": report.illness_code,
        "diagnosed_on": report.diagnosed_on.isoformat(),
        "hospital": hospital,
        "accident": report.accident,
        "scheme": report.scheme_code,
        "links": risk.link_columns(ctx.protector, report.links),
    }
    once = Once(actor.account_id, idempotency_key, "report_claim", request, ClaimView)
    with ctx.unit_of_work(once) as uow:
        session = uow.session
        now = ctx.clock.now()
        row = session.execute(
            select(Membership, Person, Plan)
            .join(Person, Person.id == Membership.person_id)
            .join(Plan, Plan.id == Membership.plan_id)
            .where(Membership.id == report.membership_id)
        ).first()
        if row is None or row[0].payer_account_id != actor.account_id:
            raise NotFound(
                "membership_not_found",
                f"there is no membership {report.membership_id}",
                "membership_id",
            )
        membership, person, plan = row
        rules = rules_of(session, plan.id, membership.plan_version)
        today = local_date(now, rules.zone)
        coverage = CoverageDates(
            membership.joined_on,
            membership.waiting_ends_on,
            membership.covered_from_on,
            membership.ages_out_on,
        )
        has_open = (
            session.scalar(
                select(Claim.id).where(
                    Claim.plan_id == plan.id,
                    Claim.person_id == person.id,
                    Claim.state.in_([str(s) for s in OPEN_STATES]),
                )
            )
            is not None
        )
        facts = ClaimFacts(
            illness_code=report.illness_code,
            diagnosed_on=report.diagnosed_on,
            accident=report.accident,
            reported_on=today,
            coverage=coverage,
            membership_state=state_on(coverage, MembershipState(membership.state), today),
            ended_on=local_date(membership.ended_at, rules.zone) if membership.ended_at else None,
            end_reason=membership.end_reason,
        )
        waiting_illness = False  # a scheme's cover has no waiting period
        if report.scheme_code:  # sponsored cover (issue 8): the scheme's terms, sponsor-paid
            terms = scheme_terms(
                session,
                plan,
                report.scheme_code,
                SchemeClaim(
                    coverage.joined_on,
                    report.diagnosed_on,
                    today,
                    facts.ended_on,
                    coverage.ages_out_on,
                    facts.membership_state,
                    has_open,
                    rules.claims.deadline_days,
                ),
            )
            illness_code, tier, payout, scheme_id = (
                terms.illness_code,
                terms.tier,
                terms.payout_fen,
                terms.scheme_id,
            )
        else:
            refusal = filing_refusal(rules, facts, has_open)
            # An illness in the waiting period is an outcome, not an error, while the membership
            # can still end: the claim is recorded closed, below (issue 19).
            waiting_illness = refusal is not None and (
                refusal[0] == WAITING_PERIOD_OUTCOME
                and facts.membership_state in (MembershipState.WAITING, MembershipState.COVERED)
            )
            if refusal and not waiting_illness:
                code, message, field, details = refusal
                raise (Conflict if code == "duplicate_open_claim" else DomainError)(
                    code, message, field, details=details
                )
            illness = rules.illness(report.illness_code)
            assert illness is not None
            illness_code, tier, scheme_id = illness.code, illness.tier, None
            payout = (
                0
                if waiting_illness
                else payout_for(
                    rules, illness.code, person.birth_on, report.diagnosed_on, report.accident
                )
            )
        claim = Claim(
            ref=f"C{today:%y%m}-{secrets.token_hex(4).upper()}",
            plan_id=plan.id,
            plan_version=membership.plan_version,
            membership_id=membership.id,
            person_id=person.id,
            claimant_account_id=actor.account_id,
            illness_code=illness_code,
            tier=tier,
            accident=report.accident,
            diagnosed_on=report.diagnosed_on,
            hospital=hospital,
            age_at_diagnosis=age_in_years(person.birth_on, report.diagnosed_on),
            payout_fen=payout,
            scheme_id=scheme_id,
            sponsored=scheme_id is not None or plan_claim_sponsored(session, plan),
            state=ClaimState.SUBMITTED,
            reported_at=now,
            reported_on=today,
            updated_at=now,
            **risk.link_columns(ctx.protector, report.links),
        )
        session.add(claim)
        try:
            session.flush()
        except IntegrityError:
            raise Conflict(
                "duplicate_open_claim",
                "this member already has an open claim in this plan",
                "membership_id",
            ) from None
        session.add(
            ClaimEventRow(
                claim_id=claim.id,
                at=now,
                actor_account_id=actor.account_id,
                event="report",
                from_state=None,
                to_state=ClaimState.SUBMITTED,
            )
        )
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="claim_reported",
            subject_type="claim",
            subject_id=claim.id,
            ref=claim.ref,
        )
        queue_leaf(
            session,
            at=now,
            leaf_type="claim_event",
            subject_type="claim",
            subject_ref=claim.ref,
            fields={
                "claim_ref": claim.ref,
                "event": "report",
                "state": "submitted",
                "at": unix_seconds(now),
                "plan_ref": plan.code,
                "illness_code": illness_code,
            },
        )
        if waiting_illness:
            _end_in_waiting_period(session, claim, plan, membership, person, actor, now)
            uow.commit(claim_view(claim, plan.code, person.name_masked))
            return uow.result
        risk.on_claim_filed(session, claim, now)
        notify(
            session,
            at=now,
            account_id=claim.claimant_account_id,
            kind="claim_submitted",
            subject_type="claim",
            subject_id=claim.id,
            ref=claim.ref,
        )
        uow.commit(claim_view(claim, plan.code, person.name_masked))
    return uow.result


def _end_in_waiting_period(
    session: Session,
    claim: Claim,
    plan: Plan,
    membership: Membership,
    person: Person,
    actor: Actor,
    now: datetime,
) -> None:
    """An illness (not an accident) first diagnosed in the waiting period: the claim closes with
    no payout, the membership ends (`waiting_illness`) and the shares it paid are refunded."""
    event = MembershipEvent.WAITING_ILLNESS
    end_membership(
        session,
        membership,
        event,
        plan_ref=plan.code,
        at=now,
        effective_at=now,
        actor_account_id=actor.recorded_id,
        reason=claim.ref,
    )
    # The shares it paid are refunded: priced and posted by collections (refunds.py).
    session.add(
        MembershipRefund(
            plan_id=plan.id,
            membership_id=membership.id,
            payer_account_id=membership.payer_account_id,
            amount_fen=0,
            reason=str(event),
            status="pending",
            created_at=now,
        )
    )
    claim.decision_reason = RejectionReason.WAITING_PERIOD
    apply_event(
        session,
        claim,
        plan,
        ClaimEvent.WAITING_ILLNESS,
        actor,
        now,
        reason_code=RejectionReason.WAITING_PERIOD,
        public_note=NOTE_WAITING_ILLNESS.format(on=membership.waiting_ends_on.isoformat()),
    )


def withdraw_claim(
    ctx: ServiceContext, actor: Actor, ref: str, *, idempotency_key: str | None = None
) -> ClaimView:
    once = Once(actor.account_id, idempotency_key, f"withdraw:{ref}", {}, ClaimView)
    with ctx.unit_of_work(once) as uow:
        claim, plan, person = load_claim(uow.session, ref)
        now = ctx.clock.now()
        require_visible(claim, actor)
        if claim.claimant_account_id != actor.account_id:
            raise Forbidden(
                "not_claimant", "only the member who reported the claim may withdraw it"
            )
        apply_event(uow.session, claim, plan, ClaimEvent.WITHDRAW, actor, now)
        uow.commit(claim_view(claim, plan.code, person.name_masked))
    return uow.result
