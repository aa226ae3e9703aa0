"""What staff read around a claim (evidence list, investigation reports, objections, who can be
assigned) and what a member lists of their own (claims, objections). Read-only; every change goes
through services.claims."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from mutualaid.db.models import Account, Claim, InvestigationReport, Objection, Person, Plan
from mutualaid.db.queries.plans import current_rules
from mutualaid.domain.accounts import STAFF_ROLES, Role
from mutualaid.domain.calendars import local_date
from mutualaid.domain.casework import (
    UNDECIDED,
    NextStep,
    days_waiting,
    decision_deadline,
    next_step,
)
from mutualaid.domain.claims import ClaimState
from mutualaid.domain.errors import Forbidden, NotFound
from mutualaid.domain.plans import PlanRules
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.claims.evidence import EvidenceView, list_evidence
from mutualaid.services.context import ServiceContext


def _require_staff(actor: Actor) -> None:
    if actor.role not in STAFF_ROLES:
        raise Forbidden("forbidden", "this is for staff", details={"variant": "staff"})


@dataclass(frozen=True, slots=True)
class StaffMember:
    id: int
    role: Role
    display_name: str | None


def staff_members(ctx: ServiceContext, actor: Actor, roles: tuple[Role, ...]) -> list[StaffMember]:
    """Staff who can be given work (e.g. investigators and reviewers for an investigation)."""
    _require_staff(actor)
    with ctx.reading() as session:
        rows = session.execute(
            select(Account.id, Account.role, Account.display_name)
            .where(Account.role.in_([str(r) for r in roles]))
            .order_by(Account.id)
        ).all()
    return [StaffMember(r.id, Role(r.role), r.display_name) for r in rows]


@dataclass(frozen=True, slots=True)
class ReportItem:
    investigator_id: int
    findings: str
    recommendation: str
    cost_fen: int
    filed_at: datetime


@dataclass(frozen=True, slots=True)
class ObjectionItem:
    id: int
    claim_ref: str
    plan_code: str
    state: str
    reason: str
    evidence_sha256: str | None
    filed_at: datetime
    review_note: str | None


@dataclass(frozen=True, slots=True)
class CaseFileExtras:
    evidence: list[EvidenceView]
    reports: list[ReportItem]
    objections: list[ObjectionItem]


def _claim_id(ctx: ServiceContext, ref: str) -> int:
    with ctx.reading() as session:
        claim_id = session.scalar(select(Claim.id).where(Claim.ref == ref))
    if claim_id is None:
        raise NotFound(
            "claim_not_found",
            f"there is no claim {ref}",
            "claim_ref",
            details={"ref": ref},
        )
    return claim_id


def case_file_extras(ctx: ServiceContext, actor: Actor, ref: str) -> CaseFileExtras:
    _require_staff(actor)
    claim_id = _claim_id(ctx, ref)
    with ctx.reading() as session:
        reports = session.scalars(
            select(InvestigationReport)
            .where(InvestigationReport.claim_id == claim_id)
            .order_by(InvestigationReport.id)
        ).all()
        objections = session.execute(
            select(Objection, Claim.ref, Plan.code)
            .join(Claim, Claim.id == Objection.claim_id)
            .join(Plan, Plan.id == Claim.plan_id)
            .where(Objection.claim_id == claim_id)
            .order_by(Objection.id)
        ).all()
    return CaseFileExtras(
        evidence=list_evidence(ctx, actor, ref),
        reports=[
            ReportItem(r.investigator_id, r.findings, r.recommendation, r.cost_fen, r.filed_at)
            for r in reports
        ],
        objections=[_objection(o, claim_ref, code) for o, claim_ref, code in objections],
    )


def _objection(o: Objection, ref: str, plan_code: str) -> ObjectionItem:
    return ObjectionItem(
        o.id, ref, plan_code, o.state, o.reason, o.evidence_sha256, o.filed_at, o.review_note
    )


def objections_to_review(
    ctx: ServiceContext, actor: Actor, *, state: str = "pending", limit: int = 100
) -> list[ObjectionItem]:
    """Objections in a state (pending first-come first-served), for reviewers."""
    if actor.role not in (Role.REVIEWER, Role.OPERATOR, Role.AUDITOR):
        raise Forbidden("forbidden", "objections are reviewed by reviewers and operators")
    with ctx.reading() as session:
        rows = session.execute(
            select(Objection, Claim.ref, Plan.code)
            .join(Claim, Claim.id == Objection.claim_id)
            .join(Plan, Plan.id == Claim.plan_id)
            .where(Objection.state == state)
            .order_by(Objection.id)
            .limit(max(1, min(limit, 500)))
        ).all()
    return [_objection(o, ref, code) for o, ref, code in rows]


def objections_filed_by(ctx: ServiceContext, actor: Actor) -> list[ObjectionItem]:
    """The objections this member has filed, with how they were decided."""
    with ctx.reading() as session:
        rows = session.execute(
            select(Objection, Claim.ref, Plan.code)
            .join(Claim, Claim.id == Objection.claim_id)
            .join(Plan, Plan.id == Claim.plan_id)
            .where(Objection.objector_account_id == actor.account_id)
            .order_by(Objection.id.desc())
        ).all()
    return [_objection(o, ref, code) for o, ref, code in rows]


@dataclass(frozen=True, slots=True)
class MemberClaim:
    ref: str
    plan_code: str
    name_masked: str
    state: str
    illness_code: str
    payout_fen: int
    reported_on: datetime


def claims_reported_by(ctx: ServiceContext, actor: Actor) -> list[MemberClaim]:
    with ctx.reading() as session:
        rows = session.execute(
            select(Claim, Plan.code, Person.name_masked)
            .join(Plan, Plan.id == Claim.plan_id)
            .join(Person, Person.id == Claim.person_id)
            .where(Claim.claimant_account_id == actor.account_id)
            .order_by(Claim.id.desc())
        ).all()
    return [
        MemberClaim(c.ref, code, name, c.state, c.illness_code, c.payout_fen, c.reported_at)
        for c, code, name in rows
    ]


@dataclass(frozen=True, slots=True)
class QueueDetail:
    """What a queue row and a case file add to a claim: the illness's names, the member's age at
    diagnosis, days waiting since the report, the decision deadline and the next step."""

    ref: str
    illness_zh: str
    illness_en: str
    age: int
    days_waiting: int
    deadline_on: date | None
    next_step: NextStep


def queue_details(ctx: ServiceContext, actor: Actor, refs: list[str]) -> dict[str, QueueDetail]:
    """The queue's columns and next steps for these claims (one query; each plan's rules once)."""
    _require_staff(actor)
    if not refs:
        return {}
    details: dict[str, QueueDetail] = {}
    with ctx.reading() as session:
        rows = session.execute(
            select(Claim, Plan).join(Plan, Plan.id == Claim.plan_id).where(Claim.ref.in_(refs))
        ).all()
        rules_by_plan: dict[int, PlanRules] = {}
        for claim, plan in rows:
            if plan.id not in rules_by_plan:
                rules_by_plan[plan.id] = current_rules(session, plan)
            rules = rules_by_plan[plan.id]
            today = ctx.clock.now().astimezone(rules.zone).date()
            state = ClaimState(claim.state)
            illness = rules.illness(claim.illness_code)
            closes_on = (
                local_date(claim.publicity_closes_at, rules.zone)
                if claim.publicity_closes_at
                else None
            )
            details[claim.ref] = QueueDetail(
                claim.ref,
                illness.name_zh if illness else claim.illness_code,
                illness.name_en if illness else claim.illness_code,
                claim.age_at_diagnosis,
                days_waiting(claim.reported_on, today) if state in UNDECIDED else 0,
                decision_deadline(rules, claim.reported_on) if state in UNDECIDED else None,
                next_step(
                    rules,
                    state,
                    claim.reported_on,
                    today,
                    publicity_on=claim.publicity_on,
                    publicity_closes_on=closes_on,
                ),
            )
    return details
