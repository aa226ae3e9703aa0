"""Review, investigation and decision: a reviewer starts, an investigator checks (and may ask the
member for documents), then an independent reviewer proposes approval or rejects."""

from __future__ import annotations

from mutualaid.db.models import Account, Claim, InvestigationReport
from mutualaid.db.queries.plans import rules_of
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.calendars import local_date
from mutualaid.domain.claims import (
    MAX_FINDINGS_CHARS,
    NOTE_APPROVED,
    NOTE_DISPUTABLE,
    ClaimEvent,
    RejectionReason,
    next_publicity_day,
    written,
)
from mutualaid.domain.errors import DomainError, Forbidden
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.claims.claims import (
    STAFF_REVIEW_ROLES,
    ClaimView,
    apply_event,
    claim_view,
    load_claim,
    require_visible,
)
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import Once
from mutualaid.services.notifications import notify


def start_review(
    ctx: ServiceContext, actor: Actor, ref: str, *, idempotency_key: str | None = None
) -> ClaimView:
    require_role(actor.role, *STAFF_REVIEW_ROLES)
    once = Once(actor.account_id, idempotency_key, f"start_review:{ref}", {}, ClaimView)
    with ctx.unit_of_work(once) as uow:
        claim, plan, person = load_claim(uow.session, ref)
        now = ctx.clock.now()
        claim.initial_reviewer_id = actor.recorded_id
        apply_event(
            uow.session,
            claim,
            plan,
            ClaimEvent.START_REVIEW,
            actor,
            now,
            public_note="a reviewer is checking your claim",
        )
        uow.commit(claim_view(claim, plan.code, person.name_masked))
    return uow.result


def assign_investigation(
    ctx: ServiceContext,
    actor: Actor,
    ref: str,
    investigator_id: int,
    *,
    idempotency_key: str | None = None,
) -> ClaimView:
    require_role(actor.role, *STAFF_REVIEW_ROLES)
    request = {"investigator": investigator_id}
    once = Once(actor.account_id, idempotency_key, f"assign:{ref}", request, ClaimView)
    with ctx.unit_of_work(once) as uow:
        session = uow.session
        claim, plan, person = load_claim(session, ref)
        now = ctx.clock.now()
        investigator = session.get(Account, investigator_id)
        # A reviewer may run a desk investigation; then someone else must decide (separated duties).
        if investigator is None or investigator.role not in (Role.INVESTIGATOR, Role.REVIEWER):
            raise DomainError(
                "not_an_investigator",
                f"account {investigator_id} is not an investigator or reviewer",
                "investigator_id",
            )
        claim.investigator_id = investigator_id
        apply_event(
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
        uow.commit(claim_view(claim, plan.code, person.name_masked))
    return uow.result


def _require_investigator(claim: Claim, actor: Actor) -> None:
    if claim.investigator_id is None or claim.investigator_id != actor.account_id:
        raise Forbidden("not_assigned", "only the investigator assigned to this claim may do this")


def request_documents(
    ctx: ServiceContext, actor: Actor, ref: str, message: str, *, idempotency_key: str | None = None
) -> ClaimView:
    written(message, "message_required", "say which documents are needed", "message")
    request = {"m": message}
    once = Once(actor.account_id, idempotency_key, f"request_documents:{ref}", request, ClaimView)
    with ctx.unit_of_work(once) as uow:
        claim, plan, person = load_claim(uow.session, ref)
        now = ctx.clock.now()
        _require_investigator(claim, actor)
        apply_event(
            uow.session,
            claim,
            plan,
            ClaimEvent.REQUEST_DOCUMENTS,
            actor,
            now,
            public_note=message.strip(),
        )
        uow.commit(claim_view(claim, plan.code, person.name_masked))
    return uow.result


def provide_documents(
    ctx: ServiceContext,
    actor: Actor,
    ref: str,
    note: str = "",
    *,
    idempotency_key: str | None = None,
) -> ClaimView:
    """The member says the requested documents are uploaded (upload them with add_evidence first)."""
    request = {"n": note}
    once = Once(actor.account_id, idempotency_key, f"provide_documents:{ref}", request, ClaimView)
    with ctx.unit_of_work(once) as uow:
        session = uow.session
        claim, plan, person = load_claim(session, ref)
        now = ctx.clock.now()
        require_visible(claim, actor)
        if claim.claimant_account_id != actor.account_id:
            raise Forbidden("not_claimant", "only the member who reported the claim may answer")
        apply_event(
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
        uow.commit(claim_view(claim, plan.code, person.name_masked))
    return uow.result


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
    written(
        findings,
        "findings_required",
        "describe what the investigation found",
        "findings",
        max_chars=MAX_FINDINGS_CHARS,
    )
    if cost_fen < 0:
        raise DomainError(
            "invalid_amount",
            "a cost cannot be negative",
            "cost_fen",
            details={"variant": "negative"},
        )
    request = {"f": findings, "r": recommendation, "c": cost_fen}
    once = Once(actor.account_id, idempotency_key, f"file_report:{ref}", request, ClaimView)
    with ctx.unit_of_work(once) as uow:
        session = uow.session
        claim, plan, person = load_claim(session, ref)
        now = ctx.clock.now()
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
        apply_event(
            session,
            claim,
            plan,
            ClaimEvent.FILE_REPORT,
            actor,
            now,
            internal_note=f"investigation recommends {recommendation}",
            public_note="the investigation is complete; an independent reviewer will decide",
        )
        uow.commit(claim_view(claim, plan.code, person.name_masked))
    return uow.result


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
        raise DomainError(
            "reason_required",
            "a rejection needs a reason code",
            "reason_code",
            details={"variant": "rejection"},
        )
    if not approve:
        written(note, "note_required", "tell the member in words why the claim is rejected", "note")
    request = {"a": approve, "r": str(reason_code), "n": note}
    once = Once(actor.account_id, idempotency_key, f"decide:{ref}", request, ClaimView)
    with ctx.unit_of_work(once) as uow:
        session = uow.session
        claim, plan, person = load_claim(session, ref)
        now = ctx.clock.now()
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
            apply_event(
                session,
                claim,
                plan,
                ClaimEvent.PROPOSE_APPROVAL,
                actor,
                now,
                public_note=NOTE_APPROVED.format(on=claim.publicity_on),
            )
        else:
            claim.decision_reason = str(reason_code)
            apply_event(
                session,
                claim,
                plan,
                ClaimEvent.REJECT,
                actor,
                now,
                reason_code=str(reason_code),
                public_note=NOTE_DISPUTABLE.format(note=note.strip()),
            )
        uow.commit(claim_view(claim, plan.code, person.name_masked))
    return uow.result
