"""Claim evidence: upload (streamed into the encrypted store, hash on the log) and logged reading.

The file goes to the store first, outside any transaction (it may take minutes on a slow phone
connection); the evidence row, its log leaf and audit row then commit together. A file stored for a
request that is then refused is harmless: it is unreferenced, encrypted, and deduplicated by hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mutualaid.db.models import Evidence
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import EVIDENCE_STATES, MAX_LABEL_CHARS, ClaimState, written
from mutualaid.domain.errors import DomainError, Forbidden, NotFound
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.claims.claims import load_claim, require_visible
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import UnitOfWork
from mutualaid.services.risk import risk
from mutualaid.services.transparency.log import queue_leaf, unix_seconds

#: Staff who may open evidence files; members only see their own uploads' metadata.
EVIDENCE_READERS = (Role.REVIEWER, Role.INVESTIGATOR, Role.OPERATOR)


@dataclass(frozen=True, slots=True)
class EvidenceView:
    id: int
    claim_ref: str
    sha256: str
    size_bytes: int
    media_type: str
    label: str
    uploaded_at: datetime
    duplicate: bool


def add_evidence(
    ctx: ServiceContext,
    actor: Actor,
    ref: str,
    chunks: Iterable[bytes],
    media_type: str,
    label: str,
    document_on: date | None = None,
) -> EvidenceView:
    """Attach a document to a claim while it is being reported or investigated."""
    label = written(
        label.strip() or "document",
        "invalid_label",
        "a label has at most 100 characters",
        "label",
        max_chars=MAX_LABEL_CHARS,
    )
    if ctx.evidence_store is None:
        raise DomainError("uploads_disabled", "this deployment has no evidence store", "file")
    with ctx.reading() as session:
        claim, _, _ = load_claim(session, ref, for_update=False)
        require_visible(claim, actor)
        if actor.role is Role.MEMBER and claim.claimant_account_id != actor.account_id:
            raise Forbidden(
                "not_claimant", "only the member who reported the claim may add evidence"
            )
        if ClaimState(claim.state) not in EVIDENCE_STATES:
            raise DomainError(
                "claim_closed_for_evidence",
                "documents can be added only before the decision",
                "claim_ref",
            )
    stored = ctx.evidence_store.put(chunks, media_type)
    phash = risk.evidence_phash(ctx, stored.sha256, stored.media_type)  # issue 9: near-duplicates
    uow: UnitOfWork[EvidenceView] = ctx.unit_of_work()
    with uow:
        session = uow.session
        now = ctx.clock.now()
        claim, plan, _ = load_claim(session, ref)
        if ClaimState(claim.state) not in EVIDENCE_STATES:
            raise DomainError(
                "claim_closed_for_evidence",
                "documents can be added only before the decision",
                "claim_ref",
            )
        existing = session.scalar(
            select(Evidence).where(Evidence.claim_id == claim.id, Evidence.sha256 == stored.sha256)
        )
        if existing is not None:  # the same file again (a retried upload): nothing new
            return _view(existing, claim.ref, duplicate=True)  # nothing written: rolled back
        row = Evidence(
            claim_id=claim.id,
            sha256=stored.sha256,
            size_bytes=stored.size_bytes,
            media_type=stored.media_type,
            label=label,
            purpose="claim" if actor.role is Role.MEMBER else "investigation",
            uploaded_by=actor.recorded_id,
            uploaded_at=now,
            phash=phash,
            document_on=document_on,
        )
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            raise DomainError(
                "duplicate_evidence", "this file is already attached", "file"
            ) from None
        queue_leaf(
            session,
            at=now,
            leaf_type="evidence",
            subject_type="claim",
            subject_ref=claim.ref,
            fields={
                "claim_ref": claim.ref,
                "sha256": stored.sha256,
                "size": stored.size_bytes,
                "media_type": stored.media_type,
                "submitted_at": unix_seconds(now),
            },
        )
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="evidence_added",
            subject_type="claim",
            subject_id=claim.id,
            sha256=stored.sha256,
            size=stored.size_bytes,
            plan=plan.code,
        )
        risk.on_evidence_added(session, claim, now)
        uow.commit(_view(row, claim.ref, duplicate=False))
    return uow.result


def _view(row: Evidence, ref: str, *, duplicate: bool) -> EvidenceView:
    return EvidenceView(
        row.id,
        ref,
        row.sha256,
        row.size_bytes,
        row.media_type,
        row.label,
        row.uploaded_at,
        duplicate,
    )


def list_evidence(ctx: ServiceContext, actor: Actor, ref: str) -> list[EvidenceView]:
    with ctx.reading() as session:
        claim, _, _ = load_claim(session, ref, for_update=False)
        require_visible(claim, actor)
        rows = session.scalars(
            select(Evidence).where(Evidence.claim_id == claim.id).order_by(Evidence.id)
        ).all()
        return [_view(r, claim.ref, duplicate=False) for r in rows]


def open_evidence(
    ctx: ServiceContext, actor: Actor, ref: str, evidence_id: int
) -> tuple[EvidenceView, Iterator[bytes]]:
    """Staff read a document; every access is written to the audit log first."""
    if actor.role not in EVIDENCE_READERS:
        raise Forbidden("forbidden", "only reviewers, investigators and operators open evidence")
    if ctx.evidence_store is None:
        raise NotFound("evidence_not_found", "this deployment has no evidence store", "evidence_id")
    uow: UnitOfWork[EvidenceView] = ctx.unit_of_work()
    with uow:
        session = uow.session
        claim, _, _ = load_claim(session, ref, for_update=False)
        row = session.get(Evidence, evidence_id)
        if row is None or row.claim_id != claim.id:
            raise NotFound(
                "evidence_not_found", f"claim {ref} has no evidence {evidence_id}", "evidence_id"
            )
        audit.record(
            session,
            at=ctx.clock.now(),
            actor_account_id=actor.account_id,
            action="evidence_viewed",
            subject_type="evidence",
            subject_id=row.id,
            claim=claim.ref,
            sha256=row.sha256,
        )
        uow.commit(_view(row, claim.ref, duplicate=False))
    return uow.result, ctx.evidence_store.open(uow.result.sha256)
