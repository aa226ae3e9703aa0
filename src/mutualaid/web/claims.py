"""Member claim pages: report a claim, follow it, answer a request for documents, dispute a
rejection, object to a published case, download the claim's proof bundle."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from mutualaid.adapters import parse_int64
from mutualaid.domain.accounts import Role
from mutualaid.domain.calendars import local_date
from mutualaid.domain.claim_progress import ClaimDates, ClaimProgress, Step, claim_progress
from mutualaid.domain.claims import EVIDENCE_STATES, ClaimEvent
from mutualaid.domain.errors import DomainError
from mutualaid.domain.plans import PlanRules
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.claims.claims import ClaimView
from mutualaid.services.claims.evidence import EvidenceView, add_evidence, list_evidence
from mutualaid.services.claims.filing import ClaimReport, report_claim, withdraw_claim
from mutualaid.services.claims.publicity import (
    PublicCase,
    cases_in_publicity,
    object_to_claim,
    objection_refusals,
)
from mutualaid.services.claims.review import provide_documents
from mutualaid.services.claims.views import TimelineEntry, claim_timeline, get_claim
from mutualaid.services.enrollment.member_data import family_coverage
from mutualaid.services.juries.juries import jury_rounds
from mutualaid.services.juries.panels import dispute_rejection
from mutualaid.services.payments.payout_desk import claim_transfers
from mutualaid.services.plans.plans import plan_rules
from mutualaid.services.transparency.checkpoints import proof_bundle
from mutualaid.web import i18n, uploads
from mutualaid.web.i18n import N_
from mutualaid.web.pages import page_router, redirect, render, render_form
from mutualaid.web.sessions import Page, PageState

router = page_router()

#: A payout transfer as its claimant reads it (payout_desk.TransferLine.status).
TRANSFER_STATUS_NAMES = {
    "waiting": i18n.N_("being prepared"),
    "sent": i18n.N_("sent"),
    "settled": i18n.N_("settled"),
    "failed": i18n.N_("failed, staff will send it again"),
}


def _report_context(page: PageState) -> dict[str, Any]:
    actor = page.need(Role.MEMBER)
    coverage = [c for c in family_coverage(page.ctx, actor) if c.active]
    plans = {c.plan_code: plan_rules(page.ctx, c.plan_code)[1] for c in coverage}
    return {
        "coverage": coverage,
        "plans": plans,
        "today": page.ctx.clock.now().astimezone(next(iter(plans.values())).zone).date()
        if plans
        else page.ctx.clock.now().date(),
    }


@router.get("/claims/new")
def report_form(page: Page) -> HTMLResponse:
    return render(page, "claims/new.html", **_report_context(page))


@router.post("/claims/new")
def report(page: Page) -> Response:
    actor = page.need(Role.MEMBER)
    context = _report_context(page)
    try:
        try:
            membership_id = parse_int64(page.text("membership_id"))
        except ValueError:
            raise DomainError("membership_required", "choose who is ill", "membership_id") from None
        try:
            diagnosed_on = date.fromisoformat(page.text("diagnosed_on"))
        except ValueError:
            raise DomainError(
                "invalid_date",
                "give the date of the first diagnosis",
                "diagnosed_on",
                details={"variant": "diagnosis"},
            ) from None
        view = report_claim(
            page.ctx,
            actor,
            ClaimReport(
                membership_id=membership_id,
                illness_code=page.text("illness_code"),
                diagnosed_on=diagnosed_on,
                hospital=page.text("hospital"),
                accident=page.text("accident") == "yes",
            ),
            idempotency_key=page.text("form_key") or None,
        )
    except DomainError as error:
        return render_form(page, "claims/new.html", error, **context)
    return redirect(f"/claims/{view.ref}", ok="claim_reported")


def _claim_context(page: PageState, ref: str) -> dict[str, Any]:
    actor = page.need()
    claim = get_claim(page.ctx, actor, ref)
    _, rules = plan_rules(page.ctx, claim.plan_code)
    evidence = list_evidence(page.ctx, actor, ref)
    timeline = claim_timeline(page.ctx, actor, ref)
    return {
        "claim": claim,
        "rules": rules,
        "zone": rules.zone,
        "illness": rules.illness(claim.illness_code),
        "timeline": timeline,
        "progress": _progress(page, claim, rules, timeline),
        "step_names": STEP_NAMES,
        "document_names": DOCUMENT_NAMES,
        "rounds": jury_rounds(page.ctx, ref),
        "evidence": evidence,
        # The same file sent again: say under which label it is already attached.
        "duplicate_of": next(
            (e for e in evidence if str(e.id) == page.request.query_params.get("duplicate")), None
        ),
        "upload": claim.state in EVIDENCE_STATES and page.ctx.evidence_store is not None,
        "piece_bytes": uploads.PIECE_BYTES,
        "transfers": claim_transfers(page.ctx, actor, ref),
        "transfer_status": i18n.named(page.lang, TRANSFER_STATUS_NAMES),
    }


#: The steps of a claim and the documents it needs, as members read them (domain/claim_progress).
STEP_NAMES = {
    Step.FILED: N_("Filed"),
    Step.REVIEW: N_("Review"),
    Step.PUBLICITY: N_("Publicity"),
    Step.OBJECTIONS: N_("Objection deadline"),
    Step.PAYOUT: N_("Payout"),
}
DOCUMENT_NAMES = {
    "id_card": N_("The ill member's ID card (both sides)"),
    "diagnosis": N_("The diagnosis certificate, or the pathology report, from the hospital"),
    "medical_record": N_("Hospital records: admission and discharge summaries, test results"),
    "bank_card": N_("The bank card the aid is to be paid to, in the member's or a parent's name"),
    "accident_report": N_("Proof of the accident: a police, traffic or work-accident report"),
}
#: Timeline events that record a decision, and the payout.
_DECISIONS = frozenset({str(ClaimEvent.REJECT), str(ClaimEvent.PROPOSE_APPROVAL)})


def _progress(
    page: PageState, claim: ClaimView, rules: PlanRules, timeline: list[TimelineEntry]
) -> ClaimProgress:
    zone = rules.zone
    decided = [local_date(t.at, zone) for t in timeline if t.event in _DECISIONS]
    paid = [local_date(t.at, zone) for t in timeline if t.event == ClaimEvent.PAY]
    return claim_progress(
        rules,
        ClaimDates(
            state=claim.state,
            reported_on=claim.reported_on,
            accident=claim.accident,
            decided_on=decided[-1] if decided else None,
            publicity_on=claim.publicity_on,
            paid_on=paid[-1] if paid else None,
        ),
        local_date(page.ctx.clock.now(), zone),
    )


@router.get("/claims/{ref}")
def claim(ref: str, page: Page) -> HTMLResponse:
    page.need(Role.MEMBER)
    return render(page, "claims/claim.html", **_claim_context(page, ref))


# --- evidence: one request without JavaScript, resumable pieces with it ----------------------------


def _file_chunks(page: PageState) -> tuple[Iterator[bytes], str]:
    upload = page.file("file")
    if upload is None:
        raise DomainError(
            "file_required",
            "choose a photo or a PDF of the document",
            "file",
            details={"variant": "evidence"},
        )

    def chunks() -> Iterator[bytes]:
        while block := upload.file.read(64 * 1024):
            yield block

    return chunks(), upload.content_type or "application/octet-stream"


@router.post("/claims/{ref}/evidence")
def evidence(ref: str, page: Page) -> Response:
    actor = page.need(Role.MEMBER)
    try:
        chunks, media_type = _file_chunks(page)
        added = add_evidence(page.ctx, actor, ref, chunks, media_type, page.text("label"))
    except DomainError as error:
        return render_form(page, "claims/claim.html", error, **_claim_context(page, ref))
    return redirect(_after_upload(added))


def _after_upload(added: EvidenceView) -> str:
    """Back to the claim: "added", or (the same file sent again) which document it already is."""
    if added.duplicate:
        return f"/claims/{added.claim_ref}?duplicate={added.id}#evidence"
    return f"/claims/{added.claim_ref}?ok=evidence_added#evidence"


def _json_error(page: PageState, error: DomainError) -> JSONResponse:
    return JSONResponse(
        {
            "error": {
                "code": error.code,
                "field": error.field,
                "message": page.lang.explain_error(error),
                **({"received": error.details["received"]} if "received" in error.details else {}),
            }
        },
        status_code=error.status,
    )


def _upload_json(upload: uploads.PartialUpload) -> JSONResponse:
    return JSONResponse(
        {
            "upload_id": upload.upload_id,
            "size": upload.size,
            "received": upload.received,
            "piece_bytes": uploads.PIECE_BYTES,
        }
    )


@router.post("/claims/{ref}/uploads")
def upload_start(ref: str, page: Page) -> Response:
    actor = page.need(Role.MEMBER)
    try:
        get_claim(page.ctx, actor, ref)
        try:
            size = parse_int64(page.text("size"))
        except ValueError:
            raise DomainError("empty_file", "the file is empty", "file") from None
        upload = uploads.start_upload(
            page.ctx,
            actor.account_id,
            ref,
            size,
            page.text("media_type") or "application/octet-stream",
            page.text("label"),
        )
    except DomainError as error:
        return _json_error(page, error)
    return _upload_json(upload)


@router.get("/claims/{ref}/uploads/{upload_id}")
def upload_state(ref: str, upload_id: str, page: Page) -> Response:
    actor = page.need(Role.MEMBER)
    try:
        upload = uploads.find_upload(page.ctx, actor.account_id, upload_id)
    except DomainError as error:
        return _json_error(page, error)
    return _upload_json(upload)


@router.put("/claims/{ref}/uploads/{upload_id}")
async def upload_piece(ref: str, upload_id: str, request: Request, page: Page) -> Response:
    actor = page.need(Role.MEMBER)
    try:
        offset = parse_int64(request.query_params.get("offset", "-1"))
        body = bytearray()
        async for block in request.stream():
            body += block
            if len(body) > uploads.PIECE_BYTES * 2:
                raise DomainError("piece_too_large", "send the file in smaller pieces", "file")
        upload = await run_in_threadpool(
            uploads.append_piece, page.ctx, actor.account_id, upload_id, offset, bytes(body)
        )
    except ValueError:
        return _json_error(
            page,
            DomainError(
                "wrong_offset", "resume from the start", "offset", details={"variant": "start"}
            ),
        )
    except DomainError as error:
        return _json_error(page, error)
    return _upload_json(upload)


@router.post("/claims/{ref}/uploads/{upload_id}/finish")
def upload_finish(ref: str, upload_id: str, page: Page) -> Response:
    actor = page.need(Role.MEMBER)
    try:
        upload = uploads.find_upload(page.ctx, actor.account_id, upload_id)
        if upload.claim_ref != ref:
            raise DomainError("upload_not_found", "there is no such upload", "upload_id")
        added = add_evidence(
            page.ctx, actor, ref, uploads.pieces(page.ctx, upload), upload.media_type, upload.label
        )
        uploads.discard(page.ctx, upload)
    except DomainError as error:
        return _json_error(page, error)
    return JSONResponse({"redirect": _after_upload(added)})


def _on_own_claim(
    page: Page, ref: str, ok: str, act: Callable[[Actor, str | None], object]
) -> Response:
    """A member acts on their claim: back to the claim with a notice, or the page again with the
    refusal next to its field. `act` gets the member and the form's idempotency key."""
    actor = page.need(Role.MEMBER)
    try:
        act(actor, page.text("form_key") or None)
    except DomainError as error:
        return render_form(page, "claims/claim.html", error, **_claim_context(page, ref))
    return redirect(f"/claims/{ref}", ok=ok)


@router.post("/claims/{ref}/documents-provided")
def documents_provided(ref: str, page: Page) -> Response:
    return _on_own_claim(
        page,
        ref,
        "documents_provided",
        lambda actor, key: provide_documents(
            page.ctx, actor, ref, page.text("note"), idempotency_key=key
        ),
    )


@router.post("/claims/{ref}/dispute")
def dispute(ref: str, page: Page) -> Response:
    return _on_own_claim(
        page,
        ref,
        "disputed",
        lambda actor, key: dispute_rejection(
            page.ctx, actor, ref, page.text("reason"), idempotency_key=key
        ),
    )


def _withdraw(page: Page, actor: Actor, ref: str, key: str | None) -> object:
    if page.text("confirm") != "yes":
        raise DomainError("confirm_required", "tick the box to confirm", "confirm")
    return withdraw_claim(page.ctx, actor, ref, idempotency_key=key)


@router.post("/claims/{ref}/withdraw")
def withdraw(ref: str, page: Page) -> Response:
    return _on_own_claim(page, ref, "done", lambda actor, key: _withdraw(page, actor, ref, key))


@router.get("/claims/{ref}/proof.json")
def claim_proof(ref: str, page: Page) -> Response:
    """The claim's proof bundle (every log leaf about it), for `mutualaid verify bundle`."""
    get_claim(page.ctx, page.need(), ref)
    bundle = proof_bundle(page.ctx, "claim", ref)
    return Response(
        bundle.to_json(),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="proof-claim-{ref}.json"'},
    )


# --- objections to a published case ---------------------------------------------------------------


def _published_case(page: PageState, ref: str) -> tuple[PublicCase, PlanRules]:
    for code in sorted({c.plan_code for c in family_coverage(page.ctx, page.need(Role.MEMBER))}):
        for case in cases_in_publicity(page.ctx, code):
            if case.ref == ref:
                return case, plan_rules(page.ctx, code)[1]
    raise DomainError(
        "publicity_closed", "objections are taken only while a case is in publicity", "claim_ref"
    )


@router.get("/claims/{ref}/objection")
def objection_form(ref: str, page: Page) -> HTMLResponse:
    case, rules = _published_case(page, ref)
    refusal = objection_refusals(page.ctx, page.need(Role.MEMBER), [ref]).get(ref, "")
    return render(
        page,
        "claims/objection.html",
        status_code=403 if refusal else 200,
        case=case,
        rules=rules,
        zone=rules.zone,
        refusal=refusal,
    )


@router.post("/claims/{ref}/objection")
def objection(ref: str, page: Page) -> Response:
    actor = page.need(Role.MEMBER)
    case, rules = _published_case(page, ref)
    try:
        object_to_claim(
            page.ctx, actor, ref, page.text("reason"), idempotency_key=page.text("form_key") or None
        )
    except DomainError as error:
        return render_form(
            page, "claims/objection.html", error, case=case, rules=rules, zone=rules.zone
        )
    return redirect("/me", ok="objected")
