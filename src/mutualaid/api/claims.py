"""Claims: report, follow, review, investigate, decide, publicity notices and objections."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile, status
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from mutualaid.adapters import Int64
from mutualaid.api.dependencies import Context, CurrentActor, IdempotencyKey
from mutualaid.api.openapi import PUBLIC_READ, READ, SAFE_TO_RETRY, WRITE, ok, raw
from mutualaid.domain.claims import (
    MAX_FINDINGS_CHARS,
    MAX_HOSPITAL_CHARS,
    MAX_NOTE_CHARS,
    MIN_OBJECTION_CHARS,
    ClaimState,
    RejectionReason,
)
from mutualaid.domain.risk import ClaimLinks
from mutualaid.services.claims.claims import ClaimView
from mutualaid.services.claims.evidence import (
    EvidenceView,
    add_evidence,
    list_evidence,
    open_evidence,
)
from mutualaid.services.claims.filing import ClaimReport, report_claim, withdraw_claim
from mutualaid.services.claims.publicity import (
    ObjectionView,
    PublicCase,
    PublicityRun,
    cases_in_publicity,
    object_to_claim,
    review_objection,
    run_publicity,
)
from mutualaid.services.claims.review import (
    assign_investigation,
    decide_claim,
    file_investigation_report,
    provide_documents,
    request_documents,
    start_review,
)
from mutualaid.services.claims.views import (
    QueueItem,
    TimelineEntry,
    claim_timeline,
    get_claim,
    work_queue,
)

router = APIRouter(prefix="/api/v1", tags=["claims"])

#: What an evidence file may be (services/evidence_store.py sniffs and refuses anything else).
EVIDENCE_MEDIA_TYPES = ("image/jpeg", "image/png", "application/pdf", "image/webp", "image/heic")


class NewClaim(BaseModel):
    membership_id: Int64
    illness_code: str = Field(min_length=1, max_length=20, examples=["CI01"])
    diagnosed_on: date
    hospital: str = Field(min_length=1, max_length=MAX_HOSPITAL_CHARS)
    accident: bool = False
    #: Optional link data for the risk signals (issue 9); contacts are stored only hashed.
    links: ClaimLinks | None = None
    #: File under a sponsored scheme of the plan (issue 8), e.g. "covid-19": the scheme's payout,
    #: paid by the sponsor, never shared.
    scheme_code: str | None = Field(default=None, max_length=40)


class Assignment(BaseModel):
    investigator_id: Int64


class Message(BaseModel):
    message: str = Field(min_length=1, max_length=MAX_NOTE_CHARS)


class Note(BaseModel):
    note: str = Field(default="", max_length=MAX_NOTE_CHARS)


class Report(BaseModel):
    findings: str = Field(min_length=1, max_length=MAX_FINDINGS_CHARS)
    recommendation: str = Field(pattern="^(approve|reject)$")
    cost_fen: Int64 = Field(default=0, ge=0)


class Decision(BaseModel):
    approve: bool
    reason_code: RejectionReason | None = None
    note: str = Field(default="", max_length=MAX_NOTE_CHARS)


class NewObjection(BaseModel):
    reason: str = Field(min_length=MIN_OBJECTION_CHARS, max_length=MAX_NOTE_CHARS)
    evidence_sha256: str | None = Field(default=None, pattern="^[0-9a-f]{64}$")


class ObjectionReview(BaseModel):
    uphold: bool
    note: str = Field(min_length=1, max_length=MAX_NOTE_CHARS)


@router.post(
    "/claims",
    operation_id="claims-report",
    status_code=status.HTTP_201_CREATED,
    response_model=None,
    responses=ok(ClaimView, 201, "Reported") | WRITE,
)
def report(
    body: NewClaim, ctx: Context, actor: CurrentActor, key: IdempotencyKey = None
) -> ClaimView:
    """Report a claim for a covered family member. The payout follows from the plan's schedule."""
    return report_claim(
        ctx,
        actor,
        ClaimReport(
            body.membership_id,
            body.illness_code,
            body.diagnosed_on,
            body.hospital,
            body.accident,
            links=body.links,
            scheme_code=body.scheme_code,
        ),
        idempotency_key=key,
    )


@router.get(
    "/claims/{ref}",
    operation_id="claims-get",
    response_model=None,
    responses=ok(ClaimView) | READ,
)
def claim(ref: str, ctx: Context, actor: CurrentActor) -> ClaimView:
    return get_claim(ctx, actor, ref)


@router.get(
    "/claims/{ref}/timeline",
    operation_id="claims-timeline",
    response_model=None,
    responses=ok(list[TimelineEntry]) | READ,
)
def timeline(ref: str, ctx: Context, actor: CurrentActor) -> list[TimelineEntry]:
    """What happened, with what the member was told (staff also see internal notes)."""
    return claim_timeline(ctx, actor, ref)


@router.get(
    "/claims",
    operation_id="claims-queue",
    response_model=None,
    responses=ok(list[QueueItem]) | READ,
)
def queue(
    ctx: Context,
    actor: CurrentActor,
    state: Annotated[list[ClaimState] | None, Query()] = None,
    plan: str | None = None,
    assigned_to_me: bool = False,
    after_id: Annotated[Int64, Query(ge=0)] = 0,
    limit: Annotated[Int64, Query(ge=1, le=200)] = 50,
) -> list[QueueItem]:
    """Staff work queue, filtered by state, plan and assignment."""
    return work_queue(
        ctx,
        actor,
        states=state,
        plan_code=plan,
        assigned_to_me=assigned_to_me,
        after_id=after_id,
        limit=limit,
    )


@router.post(
    "/claims/{ref}/review",
    operation_id="claims-start-review",
    response_model=None,
    responses=ok(ClaimView) | WRITE,
)
def review(ref: str, ctx: Context, actor: CurrentActor, key: IdempotencyKey = None) -> ClaimView:
    return start_review(ctx, actor, ref, idempotency_key=key)


@router.post(
    "/claims/{ref}/investigation",
    operation_id="claims-assign-investigation",
    response_model=None,
    responses=ok(ClaimView) | WRITE,
)
def investigate(
    ref: str, body: Assignment, ctx: Context, actor: CurrentActor, key: IdempotencyKey = None
) -> ClaimView:
    return assign_investigation(ctx, actor, ref, body.investigator_id, idempotency_key=key)


@router.post(
    "/claims/{ref}/document-requests",
    operation_id="claims-request-documents",
    response_model=None,
    responses=ok(ClaimView) | WRITE,
)
def ask_documents(
    ref: str, body: Message, ctx: Context, actor: CurrentActor, key: IdempotencyKey = None
) -> ClaimView:
    return request_documents(ctx, actor, ref, body.message, idempotency_key=key)


@router.post(
    "/claims/{ref}/documents-provided",
    operation_id="claims-documents-provided",
    response_model=None,
    responses=ok(ClaimView) | WRITE,
)
def documents_provided(
    ref: str, body: Note, ctx: Context, actor: CurrentActor, key: IdempotencyKey = None
) -> ClaimView:
    return provide_documents(ctx, actor, ref, body.note, idempotency_key=key)


@router.post(
    "/claims/{ref}/investigation-report",
    operation_id="claims-file-investigation-report",
    response_model=None,
    responses=ok(ClaimView) | WRITE,
)
def investigation_report(
    ref: str, body: Report, ctx: Context, actor: CurrentActor, key: IdempotencyKey = None
) -> ClaimView:
    return file_investigation_report(
        ctx, actor, ref, body.findings, body.recommendation, body.cost_fen, idempotency_key=key
    )


@router.post(
    "/claims/{ref}/decision",
    operation_id="claims-decide",
    response_model=None,
    responses=ok(ClaimView) | WRITE,
)
def decision(
    ref: str, body: Decision, ctx: Context, actor: CurrentActor, key: IdempotencyKey = None
) -> ClaimView:
    """Independent re-review. The investigator of the claim may not decide it."""
    return decide_claim(
        ctx,
        actor,
        ref,
        approve=body.approve,
        reason_code=body.reason_code,
        note=body.note,
        idempotency_key=key,
    )


@router.post(
    "/claims/{ref}/withdrawal",
    operation_id="claims-withdraw",
    response_model=None,
    responses=ok(ClaimView) | WRITE,
)
def withdraw(ref: str, ctx: Context, actor: CurrentActor, key: IdempotencyKey = None) -> ClaimView:
    return withdraw_claim(ctx, actor, ref, idempotency_key=key)


@router.get(
    "/plans/{plan_code}/publicity",
    operation_id="claims-publicity",
    response_model=None,
    responses=ok(list[PublicCase]) | PUBLIC_READ,
)
def publicity(plan_code: str, ctx: Context) -> list[PublicCase]:
    """The public notice: cases open for objections, anonymised (no login needed)."""
    return cases_in_publicity(ctx, plan_code)


@router.post(
    "/plans/{plan_code}/publicity/run",
    operation_id="claims-run-publicity",
    response_model=None,
    responses=ok(PublicityRun) | WRITE,
    dependencies=[SAFE_TO_RETRY],
)
def publicity_job(plan_code: str, ctx: Context, actor: CurrentActor) -> PublicityRun:
    """Operators: publish today's batch and close windows that have passed. Safe to retry: a
    second run the same day finds nothing more to publish or close."""
    return run_publicity(ctx, plan_code, actor)


@router.post(
    "/claims/{ref}/objections",
    operation_id="claims-object",
    status_code=status.HTTP_201_CREATED,
    response_model=None,
    responses=ok(ObjectionView, 201, "Objection recorded") | WRITE,
)
def object_(
    ref: str, body: NewObjection, ctx: Context, actor: CurrentActor, key: IdempotencyKey = None
) -> ObjectionView:
    """Covered members may object once per case while it is in publicity."""
    return object_to_claim(ctx, actor, ref, body.reason, body.evidence_sha256, idempotency_key=key)


@router.post(
    "/objections/{objection_id}/review",
    operation_id="claims-review-objection",
    response_model=None,
    responses=ok(ObjectionView) | WRITE,
)
def review_objection_(
    objection_id: Int64,
    body: ObjectionReview,
    ctx: Context,
    actor: CurrentActor,
    key: IdempotencyKey = None,
) -> ObjectionView:
    return review_objection(
        ctx, actor, objection_id, uphold=body.uphold, note=body.note, idempotency_key=key
    )


@router.post(
    "/claims/{ref}/evidence",
    operation_id="claims-upload-evidence",
    status_code=status.HTTP_201_CREATED,
    response_model=None,
    responses=ok(EvidenceView, 201, "Attached (or already attached)") | WRITE,
    dependencies=[SAFE_TO_RETRY],
)
def upload_evidence(
    ref: str,
    ctx: Context,
    actor: CurrentActor,
    file: Annotated[UploadFile, File(description="JPEG, PNG, WEBP, HEIC or PDF, up to 20 MB")],
    label: Annotated[str, Form(max_length=100)] = "document",
    document_on: Annotated[
        date | None, Form(description="the date printed on the document")
    ] = None,
) -> EvidenceView:
    """Attach a document. It is streamed, hashed, encrypted at rest; only its hash is public.

    Safe to retry: the same file again is not stored twice (the answer says `duplicate`)."""

    def chunks() -> Iterator[bytes]:
        while block := file.file.read(64 * 1024):
            yield block

    return add_evidence(
        ctx,
        actor,
        ref,
        chunks(),
        file.content_type or "application/octet-stream",
        label,
        document_on,
    )


@router.get(
    "/claims/{ref}/evidence",
    operation_id="claims-list-evidence",
    response_model=None,
    responses=ok(list[EvidenceView]) | READ,
)
def evidence_list(ref: str, ctx: Context, actor: CurrentActor) -> list[EvidenceView]:
    return list_evidence(ctx, actor, ref)


@router.get(
    "/claims/{ref}/evidence/{evidence_id}",
    operation_id="claims-get-evidence",
    response_class=Response,
    responses=raw(EVIDENCE_MEDIA_TYPES, "The document as uploaded", binary=True) | READ,
)
def evidence_file(
    ref: str, evidence_id: Int64, ctx: Context, actor: CurrentActor
) -> StreamingResponse:
    """Staff only; every access is audited."""
    view, content = open_evidence(ctx, actor, ref, evidence_id)
    return StreamingResponse(
        content,
        media_type=view.media_type,
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": f'inline; filename="{view.sha256[:16]}"',
        },
    )
