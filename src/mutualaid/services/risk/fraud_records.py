"""Proven fraud: the record (only for a claim a reviewer rejected for fraud), its effect on
rejoining, and the member's appeal, decided by another operator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Claim,
    FraudAppeal,
    FraudRecord,
)
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.claims import RejectionReason
from mutualaid.domain.errors import Conflict, DomainError, Forbidden, NotFound
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import Once
from mutualaid.services.notifications import notify
from mutualaid.services.risk.risk import claim_by_ref

# --- proven fraud: the record, its effects, the appeal ------------------------------------------------

if TYPE_CHECKING:
    from mutualaid.services.idempotency import UnitOfWork


@dataclass(frozen=True, slots=True)
class FraudRecordView:
    id: int
    claim_ref: str | None
    reason: str
    recorded_at: datetime
    revoked_at: datetime | None
    appeal_state: str | None


def flag_fraud(
    ctx: ServiceContext, actor: Actor, ref: str, reason: str, *, idempotency_key: str | None = None
) -> FraudRecordView:
    """Record proven fraud for a claim a reviewer rejected for fraud. The member loses juror status
    and may not rejoin until an appeal succeeds; they are told, with the right to appeal."""
    require_role(actor.role, Role.OPERATOR)
    reason = reason.strip()
    if not 10 <= len(reason) <= 2000:
        raise DomainError(
            "reason_required",
            "give the reason in 10 to 2,000 characters",
            "reason",
            details={"variant": "long"},
        )
    once = Once(
        actor.account_id, idempotency_key, f"flag_fraud:{ref}", {"reason": reason}, FraudRecordView
    )
    work: UnitOfWork[FraudRecordView] = ctx.unit_of_work(once)
    with work as uow:
        session = uow.session
        now = ctx.clock.now()
        claim = claim_by_ref(session, ref, for_update=True)
        if claim.decision_reason != RejectionReason.FRAUD:
            raise DomainError(
                "fraud_not_proven",
                "only a claim rejected for fraud can found a fraud record",
                "claim_ref",
            )
        if session.scalar(
            select(FraudRecord.id).where(
                FraudRecord.claim_id == claim.id, FraudRecord.revoked_at.is_(None)
            )
        ):
            raise Conflict("already_flagged", "this claim already has a fraud record", "claim_ref")
        record = FraudRecord(
            person_id=claim.person_id,
            account_id=claim.claimant_account_id,
            claim_id=claim.id,
            reason=reason,
            recorded_by=actor.recorded_id,
            recorded_at=now,
        )
        session.add(record)
        session.flush()
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="fraud_flagged",
            subject_type="fraud_record",
            subject_id=record.id,
            claim=claim.ref,
            person_id=claim.person_id,
            account_id=claim.claimant_account_id,
        )
        notify(
            session,
            at=now,
            account_id=claim.claimant_account_id,
            kind="fraud_flagged",
            subject_type="fraud_record",
            subject_id=record.id,
            ref=claim.ref,
        )
        uow.commit(
            FraudRecordView(
                record.id, claim.ref, record.reason, record.recorded_at, record.revoked_at, None
            )
        )
    return uow.result


def fraud_exclusion(session: Session | Connection, person_id: int | None, account_id: int) -> None:
    """Refuse a known person's rejoining while they have a standing fraud record. (The enrolling
    account's own record is checked with the join's first read; a person never seen before has
    none: no query on the busy path.)"""
    if person_id is None:
        return
    if session.scalar(
        select(FraudRecord.id)
        .where(
            FraudRecord.revoked_at.is_(None),
            (FraudRecord.person_id == person_id) | (FraudRecord.account_id == account_id),
        )
        .limit(1)
    ):
        raise excluded_for_fraud()


def excluded_for_fraud() -> Forbidden:
    return Forbidden(
        "excluded_for_fraud",
        "a proven fraud record excludes joining again; the record can be appealed",
        "id_number",
    )


def my_fraud_records(ctx: ServiceContext, actor: Actor) -> list[FraudRecordView]:
    with ctx.reading() as session:
        rows = session.execute(
            select(FraudRecord, Claim.ref, FraudAppeal.state)
            .outerjoin(Claim, Claim.id == FraudRecord.claim_id)
            .outerjoin(FraudAppeal, FraudAppeal.fraud_record_id == FraudRecord.id)
            .where(FraudRecord.account_id == actor.account_id)
            .order_by(FraudRecord.id)
        ).all()
        return [
            FraudRecordView(r.id, ref, r.reason, r.recorded_at, r.revoked_at, appeal)
            for r, ref, appeal in rows
        ]


@dataclass(frozen=True, slots=True)
class AppealView:
    id: int
    fraud_record_id: int
    state: str
    reason: str
    filed_at: datetime
    decision_note: str | None


def _appeal_view(appeal: FraudAppeal) -> AppealView:
    return AppealView(
        appeal.id,
        appeal.fraud_record_id,
        appeal.state,
        appeal.reason,
        appeal.filed_at,
        appeal.decision_note,
    )


def appeal_fraud_record(
    ctx: ServiceContext,
    actor: Actor,
    record_id: int,
    reason: str,
    *,
    idempotency_key: str | None = None,
) -> AppealView:
    """The member appeals once against a fraud record on their account."""
    reason = reason.strip()
    if not 10 <= len(reason) <= 2000:
        raise DomainError(
            "reason_required",
            "give your reason in 10 to 2,000 characters",
            "reason",
            details={"variant": "long"},
        )
    operation = f"appeal_fraud_record:{record_id}"
    once = Once(actor.account_id, idempotency_key, operation, {"reason": reason}, AppealView)
    work: UnitOfWork[AppealView] = ctx.unit_of_work(once)
    with work as uow:
        session = uow.session
        now = ctx.clock.now()
        record = session.get(FraudRecord, record_id)
        if record is None or record.account_id != actor.account_id:
            raise NotFound(
                "fraud_record_not_found", f"there is no fraud record {record_id}", "fraud_record_id"
            )
        if record.revoked_at is not None:
            raise Conflict("record_revoked", "this record is already revoked", "fraud_record_id")
        appeal = FraudAppeal(
            fraud_record_id=record.id,
            filed_by=actor.account_id,
            reason=reason,
            filed_at=now,
            state="pending",
        )
        session.add(appeal)
        try:
            session.flush()
        except IntegrityError:
            raise Conflict(
                "already_appealed", "this record has already been appealed", "fraud_record_id"
            ) from None
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="fraud_appealed",
            subject_type="fraud_record",
            subject_id=record.id,
            appeal_id=appeal.id,
        )
        uow.commit(_appeal_view(appeal))
    return uow.result


def pending_appeals(ctx: ServiceContext, actor: Actor) -> list[AppealView]:
    require_role(actor.role, Role.OPERATOR, Role.AUDITOR)
    with ctx.reading() as session:
        return [
            _appeal_view(a)
            for a in session.scalars(
                select(FraudAppeal).where(FraudAppeal.state == "pending").order_by(FraudAppeal.id)
            )
        ]


def decide_appeal(
    ctx: ServiceContext,
    actor: Actor,
    appeal_id: int,
    *,
    uphold: bool,
    note: str,
    idempotency_key: str | None = None,
) -> AppealView:
    """Another operator than the one who recorded the fraud decides; upheld, the record is revoked
    (juror status and the right to join come back with it)."""
    require_role(actor.role, Role.OPERATOR)
    if not note.strip():
        raise DomainError(
            "note_required",
            "explain the decision on the appeal",
            "note",
            details={"variant": "appeal"},
        )
    request = {"uphold": uphold, "note": note}
    once = Once(
        actor.account_id, idempotency_key, f"decide_appeal:{appeal_id}", request, AppealView
    )
    work: UnitOfWork[AppealView] = ctx.unit_of_work(once)
    with work as uow:
        session = uow.session
        now = ctx.clock.now()
        appeal = session.get(FraudAppeal, appeal_id, with_for_update=True)
        if appeal is None:
            raise NotFound("appeal_not_found", f"there is no appeal {appeal_id}", "appeal_id")
        if appeal.state != "pending":
            raise Conflict("already_decided", "this appeal has been decided", "appeal_id")
        record = session.get(FraudRecord, appeal.fraud_record_id, with_for_update=True)
        assert record is not None
        if record.recorded_by == actor.account_id:
            raise Forbidden(
                "separated_duties",
                "whoever recorded the fraud cannot decide its appeal",
                details={"variant": "fraud"},
            )
        appeal.state = "upheld" if uphold else "dismissed"
        appeal.decided_by, appeal.decided_at, appeal.decision_note = (
            actor.recorded_id,
            now,
            note.strip(),
        )
        if uphold:
            record.revoked_at = now
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action=f"fraud_appeal_{appeal.state}",
            subject_type="fraud_record",
            subject_id=record.id,
            appeal_id=appeal.id,
        )
        if record.account_id is not None:
            notify(
                session,
                at=now,
                account_id=record.account_id,
                kind=f"fraud_appeal_{appeal.state}",
                subject_type="fraud_record",
                subject_id=record.id,
                note=note.strip(),
            )
        uow.commit(_appeal_view(appeal))
    return uow.result
