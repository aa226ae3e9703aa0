"""Claims: report, review, investigate, decide, publicise, object — one function per step.

Every step is one transaction holding the transition, a timeline row the member can read, an audit
row, a transparency-log leaf and the notifications it causes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Claim,
    ClaimEventRow,
    Evidence,
    InvestigationReport,
    Membership,
    Objection,
    Person,
    Plan,
)
from mutualaid.db.queries.plans import plan_by_code, rules_of
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.calendars import age_in_years, local_date
from mutualaid.domain.claims import (
    OPEN_STATES,
    ClaimEvent,
    ClaimFacts,
    ClaimState,
    RejectionReason,
    filing_refusal,
    next_publicity_day,
    payout_for,
    publicity_window,
    transition,
)
from mutualaid.domain.errors import Conflict, DomainError, Forbidden, NotFound
from mutualaid.domain.identities import PROVINCES
from mutualaid.domain.memberships import CoverageDates, MembershipState, state_on
from mutualaid.domain.plans import PlanRules
from mutualaid.domain.risk import ClaimLinks
from mutualaid.domain.schemes import SchemeClaim
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import run_idempotent
from mutualaid.services.notifications import notify
from mutualaid.services.plans.schemes import plan_claim_sponsored, scheme_terms
from mutualaid.services.risk import risk
from mutualaid.services.transparency.log import queue_leaf, unix_seconds

STAFF_REVIEW_ROLES = (Role.REVIEWER, Role.OPERATOR)


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


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    event: str
    state: str
    reason_code: str | None
    note: str | None


def _view(claim: Claim, plan_code: str, name_masked: str) -> ClaimView:
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


def _load(session: Session, ref: str, *, for_update: bool = True) -> tuple[Claim, Plan, Person]:
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
        raise NotFound("claim_not_found", f"there is no claim {ref}", "claim_ref")
    return row[0], row[1], row[2]


def _visible(claim: Claim, actor: Actor) -> None:
    """Members see only their family's claims; staff see all."""
    if actor.role is Role.MEMBER and claim.claimant_account_id != actor.account_id:
        raise NotFound("claim_not_found", f"there is no claim {claim.ref}", "claim_ref")


def _apply(
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


# --- reporting ------------------------------------------------------------------------------------


def report_claim(
    ctx: ServiceContext, actor: Actor, report: ClaimReport, *, idempotency_key: str | None = None
) -> ClaimView:
    """A member (the family's account holder) reports a claim for a covered family member."""
    hospital = report.hospital.strip()
    if not hospital or len(hospital) > 200:
        raise DomainError("invalid_hospital", "name the hospital (1 to 200 characters)", "hospital")

    def file(session: Session) -> ClaimView:
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
            if refusal:
                code, message, field = refusal
                raise (Conflict if code == "duplicate_open_claim" else DomainError)(
                    code, message, field
                )
            illness = rules.illness(report.illness_code)
            assert illness is not None
            illness_code, tier, scheme_id = illness.code, illness.tier, None
            payout = payout_for(
                rules, illness.code, person.birth_on, report.diagnosed_on, report.accident
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
        risk.on_claim_filed(session, claim, now)
        return _view(claim, plan.code, person.name_masked)

    return run_idempotent(
        ctx,
        account_id=actor.account_id,
        key=idempotency_key,
        operation="report_claim",
        request={
            "membership": report.membership_id,
            "illness": report.illness_code,
            "diagnosed_on": report.diagnosed_on.isoformat(),
            "hospital": hospital,
            "accident": report.accident,
            "scheme": report.scheme_code,
            "links": risk.link_columns(ctx.protector, report.links),
        },
        result_type=ClaimView,
        action=file,
    )


def get_claim(ctx: ServiceContext, actor: Actor, ref: str) -> ClaimView:
    with ctx.reading() as session:
        claim, plan, person = _load(session, ref, for_update=False)
        _visible(claim, actor)
        return _view(claim, plan.code, person.name_masked)


def claim_timeline(ctx: ServiceContext, actor: Actor, ref: str) -> list[TimelineEntry]:
    """What happened to a claim; members see the public notes, staff also the internal ones."""
    with ctx.reading() as session:
        claim, _, _ = _load(session, ref, for_update=False)
        _visible(claim, actor)
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


# --- review and investigation ----------------------------------------------------------------------


def _step(
    ctx: ServiceContext,
    actor: Actor,
    ref: str,
    idempotency_key: str | None,
    operation: str,
    request: dict[str, Any],
    body: Any,
) -> ClaimView:
    def run(session: Session) -> ClaimView:
        claim, plan, person = _load(session, ref)
        body(session, claim, plan, ctx.clock.now())
        return _view(claim, plan.code, person.name_masked)

    return run_idempotent(
        ctx,
        account_id=actor.account_id,
        key=idempotency_key,
        operation=f"{operation}:{ref}",
        request=request,
        result_type=ClaimView,
        action=run,
    )


def start_review(
    ctx: ServiceContext, actor: Actor, ref: str, *, idempotency_key: str | None = None
) -> ClaimView:
    require_role(actor.role, *STAFF_REVIEW_ROLES)

    def body(session: Session, claim: Claim, plan: Plan, now: datetime) -> None:
        claim.initial_reviewer_id = actor.recorded_id
        _apply(
            session,
            claim,
            plan,
            ClaimEvent.START_REVIEW,
            actor,
            now,
            public_note="a reviewer is checking your claim",
        )

    return _step(ctx, actor, ref, idempotency_key, "start_review", {}, body)


def assign_investigation(
    ctx: ServiceContext,
    actor: Actor,
    ref: str,
    investigator_id: int,
    *,
    idempotency_key: str | None = None,
) -> ClaimView:
    require_role(actor.role, *STAFF_REVIEW_ROLES)
    from mutualaid.db.models import Account

    def body(session: Session, claim: Claim, plan: Plan, now: datetime) -> None:
        investigator = session.get(Account, investigator_id)
        # A reviewer may run a desk investigation; then someone else must decide (separated duties).
        if investigator is None or investigator.role not in (Role.INVESTIGATOR, Role.REVIEWER):
            raise DomainError(
                "not_an_investigator",
                f"account {investigator_id} is not an investigator or reviewer",
                "investigator_id",
            )
        claim.investigator_id = investigator_id
        _apply(
            session,
            claim,
            plan,
            ClaimEvent.ASSIGN_INVESTIGATION,
            actor,
            now,
            public_note="an investigator will check the documents and may contact you",
        )
        notify(
            session,
            at=now,
            account_id=investigator_id,
            kind="investigation_assigned",
            subject_type="claim",
            subject_id=claim.id,
            ref=claim.ref,
        )

    return _step(
        ctx, actor, ref, idempotency_key, "assign", {"investigator": investigator_id}, body
    )


def _require_investigator(claim: Claim, actor: Actor) -> None:
    if claim.investigator_id is None or claim.investigator_id != actor.account_id:
        raise Forbidden("not_assigned", "only the investigator assigned to this claim may do this")


def request_documents(
    ctx: ServiceContext, actor: Actor, ref: str, message: str, *, idempotency_key: str | None = None
) -> ClaimView:
    if not message.strip():
        raise DomainError("message_required", "say which documents are needed", "message")

    def body(session: Session, claim: Claim, plan: Plan, now: datetime) -> None:
        _require_investigator(claim, actor)
        _apply(
            session,
            claim,
            plan,
            ClaimEvent.REQUEST_DOCUMENTS,
            actor,
            now,
            public_note=message.strip(),
        )

    return _step(ctx, actor, ref, idempotency_key, "request_documents", {"m": message}, body)


def provide_documents(
    ctx: ServiceContext,
    actor: Actor,
    ref: str,
    note: str = "",
    *,
    idempotency_key: str | None = None,
) -> ClaimView:
    """The member says the requested documents are uploaded (upload them with add_evidence first)."""

    def body(session: Session, claim: Claim, plan: Plan, now: datetime) -> None:
        _visible(claim, actor)
        if claim.claimant_account_id != actor.account_id:
            raise Forbidden("not_claimant", "only the member who reported the claim may answer")
        _apply(
            session,
            claim,
            plan,
            ClaimEvent.PROVIDE_DOCUMENTS,
            actor,
            now,
            public_note=note.strip() or None,
        )
        if claim.investigator_id:
            notify(
                session,
                at=now,
                account_id=claim.investigator_id,
                kind="documents_provided",
                subject_type="claim",
                subject_id=claim.id,
                ref=claim.ref,
            )

    return _step(ctx, actor, ref, idempotency_key, "provide_documents", {"n": note}, body)


def file_investigation_report(
    ctx: ServiceContext,
    actor: Actor,
    ref: str,
    findings: str,
    recommendation: str,
    cost_fen: int = 0,
    *,
    idempotency_key: str | None = None,
) -> ClaimView:
    if recommendation not in ("approve", "reject"):
        raise DomainError("invalid_recommendation", "recommend approve or reject", "recommendation")
    if not findings.strip():
        raise DomainError("findings_required", "describe what the investigation found", "findings")
    if cost_fen < 0:
        raise DomainError("invalid_amount", "a cost cannot be negative", "cost_fen")

    def body(session: Session, claim: Claim, plan: Plan, now: datetime) -> None:
        _require_investigator(claim, actor)
        session.add(
            InvestigationReport(
                claim_id=claim.id,
                investigator_id=actor.account_id,
                findings=findings.strip(),
                recommendation=recommendation,
                cost_fen=cost_fen,
                filed_at=now,
            )
        )
        _apply(
            session,
            claim,
            plan,
            ClaimEvent.FILE_REPORT,
            actor,
            now,
            internal_note=f"investigation recommends {recommendation}",
            public_note="the investigation is complete; an independent reviewer will decide",
        )

    return _step(
        ctx,
        actor,
        ref,
        idempotency_key,
        "file_report",
        {"f": findings, "r": recommendation, "c": cost_fen},
        body,
    )


def decide_claim(
    ctx: ServiceContext,
    actor: Actor,
    ref: str,
    *,
    approve: bool,
    reason_code: RejectionReason | None = None,
    note: str = "",
    idempotency_key: str | None = None,
) -> ClaimView:
    """Independent re-review: propose approval (then publicity) or reject with a reason code.

    Separated duties: the approver must not be the claim's investigator. Initial review may also
    reject a plainly ineligible claim.
    """
    require_role(actor.role, *STAFF_REVIEW_ROLES)
    if not approve and reason_code is None:
        raise DomainError("reason_required", "a rejection needs a reason code", "reason_code")
    if not approve and not note.strip():
        raise DomainError(
            "note_required", "tell the member in words why the claim is rejected", "note"
        )

    def body(session: Session, claim: Claim, plan: Plan, now: datetime) -> None:
        if claim.investigator_id is not None and claim.investigator_id == actor.account_id:
            raise Forbidden(
                "separated_duties",
                "the investigator of a claim cannot also decide it: ask another reviewer",
            )
        rules = rules_of(session, plan.id, claim.plan_version)
        claim.approver_id = actor.recorded_id
        claim.decided_at = now
        claim.decision_note = note.strip() or None
        if approve:
            claim.decision_reason = None
            claim.publicity_on = next_publicity_day(rules, local_date(now, rules.zone))
            _apply(
                session,
                claim,
                plan,
                ClaimEvent.PROPOSE_APPROVAL,
                actor,
                now,
                public_note=f"approved subject to publicity from {claim.publicity_on}",
            )
        else:
            claim.decision_reason = str(reason_code)
            _apply(
                session,
                claim,
                plan,
                ClaimEvent.REJECT,
                actor,
                now,
                reason_code=str(reason_code),
                public_note=f"{note.strip()} — you may dispute this decision and ask for a "
                "member jury",
            )

    return _step(
        ctx,
        actor,
        ref,
        idempotency_key,
        "decide",
        {"a": approve, "r": str(reason_code), "n": note},
        body,
    )


def withdraw_claim(
    ctx: ServiceContext, actor: Actor, ref: str, *, idempotency_key: str | None = None
) -> ClaimView:
    def body(session: Session, claim: Claim, plan: Plan, now: datetime) -> None:
        _visible(claim, actor)
        if claim.claimant_account_id != actor.account_id:
            raise Forbidden(
                "not_claimant", "only the member who reported the claim may withdraw it"
            )
        _apply(session, claim, plan, ClaimEvent.WITHDRAW, actor, now)

    return _step(ctx, actor, ref, idempotency_key, "withdraw", {}, body)


# --- publicity and objections ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PublicityRun:
    published: int
    approved: int
    held_by_objections: int


def run_publicity(ctx: ServiceContext, plan_code: str, actor: Actor) -> PublicityRun:
    """The publicity job (run daily): publish the batch due today; approve cases whose window closed.

    A case with an objection still under review stays in publicity until the objection is decided.
    """
    require_role(actor.role, Role.OPERATOR)
    with ctx.transaction() as session:
        now = ctx.clock.now()
        plan = plan_by_code(session, plan_code)
        published = approved = held = 0
        due = session.scalars(
            select(Claim)
            .where(Claim.plan_id == plan.id, Claim.state == ClaimState.APPROVAL_PROPOSED)
            .order_by(Claim.id)
            .with_for_update()
        ).all()
        for claim in due:
            rules = rules_of(session, plan.id, claim.plan_version)
            today = local_date(now, rules.zone)
            if claim.publicity_on is None or claim.publicity_on > today:
                continue
            # Published late (the job did not run on the day): the window starts today, in full.
            window = publicity_window(rules, max(claim.publicity_on, today))
            claim.publicity_on, claim.publicity_closes_at = window.published_on, window.closes_at
            _apply(
                session,
                claim,
                plan,
                ClaimEvent.PUBLISH,
                actor,
                now,
                public_note=f"published for objections until {window.closes_at:%Y-%m-%d %H:%M} UTC",
            )
            published += 1
        pending = set(
            session.scalars(select(Objection.claim_id).where(Objection.state == "pending"))
        )
        closing = session.scalars(
            select(Claim)
            .where(
                Claim.plan_id == plan.id,
                Claim.state == ClaimState.IN_PUBLICITY,
                Claim.publicity_closes_at <= now,
            )
            .order_by(Claim.id)
            .with_for_update()
        ).all()
        for claim in closing:
            if claim.id in pending:
                held += 1
                continue
            claim.approved_at = claim.publicity_closes_at
            _apply(
                session,
                claim,
                plan,
                ClaimEvent.CLOSE_PUBLICITY,
                actor,
                now,
                public_note="publicity passed: your aid will be paid after the next collection",
            )
            approved += 1
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="publicity_run",
            subject_type="plan",
            subject_id=plan.id,
            published=published,
            approved=approved,
            held=held,
        )
        return PublicityRun(published, approved, held)


@dataclass(frozen=True, slots=True)
class PublicCase:
    """A case as the public notice shows it: no name beyond the mask, no document, no ID."""

    ref: str
    name_masked: str
    illness_code: str
    illness_zh: str
    illness_en: str
    age: int
    sex: str
    province_zh: str
    province_en: str
    payout_fen: int
    days_since_joining: int
    accident: bool
    state: str
    publicity_on: date | None
    publicity_closes_at: datetime | None


def public_case(
    rules: PlanRules, claim: Claim, person: Person, membership: Membership
) -> PublicCase:
    illness = rules.illness(claim.illness_code)
    province = PROVINCES.get(person.province_code, ("", ""))
    return PublicCase(
        ref=claim.ref,
        name_masked=person.name_masked,
        illness_code=claim.illness_code,
        illness_zh=illness.name_zh if illness else claim.illness_code,
        illness_en=illness.name_en if illness else claim.illness_code,
        age=claim.age_at_diagnosis,
        sex=person.sex,
        province_zh=province[0],
        province_en=province[1],
        payout_fen=claim.payout_fen,
        days_since_joining=(claim.diagnosed_on - membership.joined_on).days,
        accident=claim.accident,
        state=claim.state,
        publicity_on=claim.publicity_on,
        publicity_closes_at=claim.publicity_closes_at,
    )


def cases_in_publicity(ctx: ServiceContext, plan_code: str) -> list[PublicCase]:
    """The public notice: every case now open for objections (no login needed)."""
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        rows = session.execute(
            select(Claim, Person, Membership)
            .join(Person, Person.id == Claim.person_id)
            .join(Membership, Membership.id == Claim.membership_id)
            .where(Claim.plan_id == plan.id, Claim.state == ClaimState.IN_PUBLICITY)
            .order_by(Claim.publicity_on, Claim.id)
        ).all()
        return [
            public_case(rules_of(session, plan.id, c.plan_version), c, p, m) for c, p, m in rows
        ]


@dataclass(frozen=True, slots=True)
class ObjectionView:
    id: int
    claim_ref: str
    state: str
    reason: str
    filed_at: datetime
    review_note: str | None


def _objection_view(objection: Objection, ref: str) -> ObjectionView:
    return ObjectionView(
        objection.id,
        ref,
        objection.state,
        objection.reason,
        objection.filed_at,
        objection.review_note,
    )


def object_to_claim(
    ctx: ServiceContext,
    actor: Actor,
    ref: str,
    reason: str,
    evidence_sha256: str | None = None,
    *,
    idempotency_key: str | None = None,
) -> ObjectionView:
    """Any covered member of the plan may object, once per case, while its publicity is open."""
    reason = reason.strip()
    if not 10 <= len(reason) <= 2000:
        raise DomainError("reason_required", "give your reason in 10 to 2,000 characters", "reason")

    def file(session: Session) -> ObjectionView:
        now = ctx.clock.now()
        closed = DomainError(
            "publicity_closed",
            "objections are taken only while a case is in publicity",
            "claim_ref",
        )
        try:
            claim, plan, _ = _load(session, ref, for_update=False)
        except NotFound:
            # The same answer as for a claim not in publicity: refs of unpublished claims must
            # not be testable for existence (security issue #13, finding 12).
            raise closed from None
        if (
            claim.state != ClaimState.IN_PUBLICITY
            or claim.publicity_closes_at is None
            or not now < claim.publicity_closes_at
        ):
            raise closed
        covered = (
            session.execute(
                select(Membership).where(
                    Membership.payer_account_id == actor.account_id,
                    Membership.plan_id == plan.id,
                    Membership.state.in_(["waiting", "covered"]),
                )
            )
            .scalars()
            .all()
        )
        rules = rules_of(session, plan.id, claim.plan_version)
        today = local_date(now, rules.zone)
        if not any(
            state_on(
                CoverageDates(m.joined_on, m.waiting_ends_on, m.covered_from_on, m.ages_out_on),
                MembershipState(m.state),
                today,
            )
            is MembershipState.COVERED
            for m in covered
        ):
            raise Forbidden("not_covered_member", "only covered members of this plan may object")
        objection = Objection(
            claim_id=claim.id,
            objector_account_id=actor.account_id,
            reason=reason,
            evidence_sha256=evidence_sha256,
            state="pending",
            filed_at=now,
        )
        session.add(objection)
        try:
            session.flush()
        except IntegrityError:
            raise Conflict(
                "already_objected", "you have already objected to this case", "claim_ref"
            ) from None
        fields: dict[str, Any] = {
            "claim_ref": claim.ref,
            "objection_ref": f"O{objection.id}",
            "event": "filed",
            "at": unix_seconds(now),
        }
        if evidence_sha256:
            fields["evidence_sha256"] = evidence_sha256
        queue_leaf(
            session,
            at=now,
            leaf_type="objection",
            fields=fields,
            subject_type="claim",
            subject_ref=claim.ref,
        )
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="objection_filed",
            subject_type="claim",
            subject_id=claim.id,
            objection_id=objection.id,
        )
        return _objection_view(objection, claim.ref)

    return run_idempotent(
        ctx,
        account_id=actor.account_id,
        key=idempotency_key,
        operation=f"object:{ref}",
        request={"r": reason, "e": evidence_sha256},
        result_type=ObjectionView,
        action=file,
    )


def review_objection(
    ctx: ServiceContext,
    actor: Actor,
    objection_id: int,
    *,
    uphold: bool,
    note: str,
    idempotency_key: str | None = None,
) -> ObjectionView:
    """An upheld objection sends the case back to re-review; a dismissed one lets publicity close."""
    require_role(actor.role, *STAFF_REVIEW_ROLES)
    if not note.strip():
        raise DomainError("note_required", "explain the decision on the objection", "note")

    def review(session: Session) -> ObjectionView:
        now = ctx.clock.now()
        objection = session.get(Objection, objection_id, with_for_update=True)
        if objection is None:
            raise NotFound(
                "objection_not_found", f"there is no objection {objection_id}", "objection_id"
            )
        if objection.state != "pending":
            raise Conflict("already_reviewed", "this objection has been reviewed", "objection_id")
        claim = session.get(Claim, objection.claim_id, with_for_update=True)
        assert claim is not None
        plan = session.get(Plan, claim.plan_id)
        assert plan is not None
        objection.state = "upheld" if uphold else "dismissed"
        objection.reviewed_by, objection.reviewed_at = actor.recorded_id, now
        objection.review_note = note.strip()
        if uphold and claim.state == ClaimState.IN_PUBLICITY:
            claim.publicity_on = claim.publicity_closes_at = None
            _apply(
                session,
                claim,
                plan,
                ClaimEvent.UPHOLD_OBJECTION,
                actor,
                now,
                public_note="an objection was upheld: the case is being reviewed again",
                internal_note=note.strip(),
            )
        queue_leaf(
            session,
            at=now,
            leaf_type="objection",
            subject_type="claim",
            subject_ref=claim.ref,
            fields={
                "claim_ref": claim.ref,
                "objection_ref": f"O{objection.id}",
                "event": objection.state,
                "at": unix_seconds(now),
            },
        )
        notify(
            session,
            at=now,
            account_id=objection.objector_account_id,
            kind=f"objection_{objection.state}",
            subject_type="claim",
            subject_id=claim.id,
            ref=claim.ref,
            note=note.strip(),
        )
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action=f"objection_{objection.state}",
            subject_type="claim",
            subject_id=claim.id,
            objection_id=objection.id,
        )
        return _objection_view(objection, claim.ref)

    return run_idempotent(
        ctx,
        account_id=actor.account_id,
        key=idempotency_key,
        operation=f"review_objection:{objection_id}",
        request={"u": uphold, "n": note},
        result_type=ObjectionView,
        action=review,
    )


# --- queues ---------------------------------------------------------------------------------------


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
        raise Forbidden("forbidden", "work queues are for staff")
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
