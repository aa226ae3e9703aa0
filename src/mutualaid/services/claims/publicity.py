"""The notice period and objections: the daily publicity run, the public notice of cases open for
objections, and objections filed by covered members and reviewed by staff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Claim,
    Membership,
    Objection,
    Person,
    Plan,
)
from mutualaid.db.queries.plans import plan_by_code, rules_of
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.calendars import local_date
from mutualaid.domain.claims import (
    MIN_OBJECTION_CHARS,
    NOTE_INSTANT_FORMAT,
    NOTE_PUBLISHED,
    ClaimEvent,
    ClaimState,
    next_publicity_day,
    publicity_window,
    written,
)
from mutualaid.domain.errors import Conflict, DomainError, Forbidden, NotFound
from mutualaid.domain.identities import PROVINCES
from mutualaid.domain.memberships import CoverageDates, MembershipState, state_on
from mutualaid.domain.plans import PlanRules
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.claims.claims import STAFF_REVIEW_ROLES, apply_event, load_claim
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import Once, UnitOfWork
from mutualaid.services.notifications import notify
from mutualaid.services.transparency.log import queue_leaf, unix_seconds


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
    uow: UnitOfWork[PublicityRun] = ctx.unit_of_work()
    with uow:
        session = uow.session
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
            apply_event(
                session,
                claim,
                plan,
                ClaimEvent.PUBLISH,
                actor,
                now,
                public_note=NOTE_PUBLISHED.format(
                    at=window.closes_at.astimezone(UTC).strftime(NOTE_INSTANT_FORMAT)
                ),
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
            apply_event(
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
        uow.commit(PublicityRun(published, approved, held))
    return uow.result


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
    #: The publicity day of the period whose members share this case's aid: the first publicity
    #: day after the case is approved (expected from the end of its publicity while it is in
    #: publicity; None before publicity or once it can no longer be paid).
    charged_on: date | None = None


def charging_publicity_day(rules: PlanRules, claim: Claim) -> date | None:
    """The period a case is (or, in publicity, will be) shared in: a period takes the cases
    approved before its lock, 00:00 of its publicity day in the plan's zone."""
    if claim.state in (ClaimState.APPROVED, ClaimState.PAID) and claim.approved_at is not None:
        approved = claim.approved_at
    elif claim.state == ClaimState.IN_PUBLICITY and claim.publicity_closes_at is not None:
        approved = claim.publicity_closes_at  # approved when publicity closes without objection
    else:
        return None
    return next_publicity_day(rules, local_date(approved, rules.zone))


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
        charged_on=charging_publicity_day(rules, claim),
    )


def cases_in_publicity(ctx: ServiceContext, plan_code: str) -> list[PublicCase]:
    """The public notice: every case now open for objections (no login needed)."""
    with ctx.reading(replica=True) as session:
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


def _covered_in_plan(session: Session, account_id: int, plan_id: int, today: date) -> bool:
    """Does the account pay for a membership of the plan that is covered today?"""
    memberships = session.scalars(
        select(Membership).where(
            Membership.payer_account_id == account_id,
            Membership.plan_id == plan_id,
            Membership.state.in_(["waiting", "covered"]),
        )
    ).all()
    return any(
        state_on(
            CoverageDates(m.joined_on, m.waiting_ends_on, m.covered_from_on, m.ages_out_on),
            MembershipState(m.state),
            today,
        )
        is MembershipState.COVERED
        for m in memberships
    )


def _objection_refusal(
    session: Session,
    actor: Actor,
    claim: Claim,
    plan_id: int,
    now: datetime,
    *,
    check_earlier: bool = True,
) -> DomainError | None:
    """Why this member may not object to this case in publicity (None: they may).

    The rules: only a member whose cover is in force in the claim's plan, never the claimant
    (nor whoever pays for the ill member), once per case."""
    if actor.account_id == claim.claimant_account_id or (
        session.scalar(
            select(Membership.payer_account_id).where(Membership.id == claim.membership_id)
        )
        == actor.account_id
    ):
        return Forbidden("own_claim", "you cannot object to a claim of your own family")
    rules = rules_of(session, plan_id, claim.plan_version)
    if not _covered_in_plan(session, actor.account_id, plan_id, local_date(now, rules.zone)):
        return Forbidden("not_covered_member", "only covered members of this plan may object")
    if check_earlier and session.scalar(
        select(Objection.id).where(
            Objection.claim_id == claim.id, Objection.objector_account_id == actor.account_id
        )
    ):
        return Conflict("already_objected", "you have already objected to this case", "claim_ref")
    return None


def objection_refusals(ctx: ServiceContext, actor: Actor, refs: list[str]) -> dict[str, str]:
    """For each case of `refs` in publicity, the code of the rule that keeps this member from
    objecting ("" when they may): pages offer the objection only where it would be taken."""
    if not refs:
        return {}
    with ctx.reading() as session:
        now = ctx.clock.now()
        claims = session.scalars(
            select(Claim).where(Claim.ref.in_(refs), Claim.state == ClaimState.IN_PUBLICITY)
        ).all()
        result = {}
        for claim in claims:
            open_now = claim.publicity_closes_at is not None and now < claim.publicity_closes_at
            refusal = (
                _objection_refusal(session, actor, claim, claim.plan_id, now)
                if open_now
                else DomainError("publicity_closed", "publicity is closed")
            )
            result[claim.ref] = refusal.code if refusal is not None else ""
        return result


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
    reason = written(
        reason,
        "reason_required",
        "give your reason in 10 to 2,000 characters",
        "reason",
        min_chars=MIN_OBJECTION_CHARS,
        details={"variant": "long"},
    )

    request = {"r": reason, "e": evidence_sha256}
    once = Once(actor.account_id, idempotency_key, f"object:{ref}", request, ObjectionView)
    with ctx.unit_of_work(once) as uow:
        session = uow.session
        now = ctx.clock.now()
        closed = DomainError(
            "publicity_closed",
            "objections are taken only while a case is in publicity",
            "claim_ref",
        )
        try:
            claim, plan, _ = load_claim(session, ref, for_update=False)
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
        refusal = _objection_refusal(session, actor, claim, plan.id, now, check_earlier=False)
        if refusal is not None:
            raise refusal
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
        uow.commit(_objection_view(objection, claim.ref))
    return uow.result


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
    written(note, "note_required", "explain the decision on the objection", "note")

    request = {"u": uphold, "n": note}
    once = Once(
        actor.account_id,
        idempotency_key,
        f"review_objection:{objection_id}",
        request,
        ObjectionView,
    )
    with ctx.unit_of_work(once) as uow:
        session = uow.session
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
            apply_event(
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
        uow.commit(_objection_view(objection, claim.ref))
    return uow.result
