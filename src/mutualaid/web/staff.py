"""Staff pages: work queues, the case file, investigation, decisions, objections, and the
operator's desk (publicity, juries, plan configuration, dashboards, audit log).

Separated duties are shown and enforced: a claim's investigator sees why they cannot decide it,
and the services refuse it anyway. Every page checks the role first.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi.responses import HTMLResponse, Response, StreamingResponse

from mutualaid.adapters import Int64, parse_int64
from mutualaid.domain.accounts import STAFF_ROLES, Role
from mutualaid.domain.apportionment import period_ref
from mutualaid.domain.calendars import local_date
from mutualaid.domain.claims import ClaimState, RejectionReason, next_publicity_day
from mutualaid.domain.errors import DomainError, NotFound
from mutualaid.domain.money import parse_yuan
from mutualaid.services.claims.casework import (
    case_file_extras,
    objections_to_review,
    queue_details,
    staff_members,
)
from mutualaid.services.claims.evidence import EVIDENCE_READERS, list_evidence, open_evidence
from mutualaid.services.claims.publicity import review_objection, run_publicity
from mutualaid.services.claims.review import (
    assign_investigation,
    decide_claim,
    file_investigation_report,
    request_documents,
    start_review,
)
from mutualaid.services.claims.views import claim_timeline, get_claim, work_queue
from mutualaid.services.collections.files import export_collection_file, import_collection_results
from mutualaid.services.juries.closing import close_due_juries
from mutualaid.services.juries.juries import jury_rounds
from mutualaid.services.juries.panels import refer_to_jury
from mutualaid.services.periods.close import close_period
from mutualaid.services.periods.preview import preview_period
from mutualaid.services.periods.views import list_periods
from mutualaid.services.plans.plan_statistics import operator_dashboard, plan_statistics
from mutualaid.services.plans.plans import list_plans, plan_rules, plan_source, publish_plan
from mutualaid.services.reports.audit_search import AuditFilter, search_audit
from mutualaid.web import i18n
from mutualaid.web.pages import DEFAULT_ZONE, page_router, redirect, render, render_form
from mutualaid.web.sessions import Page, PageState

router = page_router()

STAFF = tuple(sorted(STAFF_ROLES))
DECIDERS = (Role.REVIEWER, Role.OPERATOR)
DESK = (Role.OPERATOR, Role.AUDITOR)

#: What each role works on first when the queue opens without filters.
DEFAULT_QUEUE: dict[Role, tuple[ClaimState, ...]] = {
    Role.REVIEWER: (ClaimState.SUBMITTED, ClaimState.IN_REVIEW, ClaimState.RE_REVIEW),
    Role.OPERATOR: (
        ClaimState.SUBMITTED,
        ClaimState.IN_REVIEW,
        ClaimState.RE_REVIEW,
        ClaimState.APPROVAL_PROPOSED,
        ClaimState.IN_PUBLICITY,
    ),
    Role.INVESTIGATOR: (ClaimState.INVESTIGATING, ClaimState.AWAITING_DOCUMENTS),
    Role.AUDITOR: (),
}

#: The next step of a case (domain.casework.NEXT_STEPS), as staff read it.
STEP_NAMES = {
    "start_review": i18n.N_("start the review"),
    "decide_or_investigate": i18n.N_("decide, or send to field investigation"),
    "file_report": i18n.N_("the investigator files a report"),
    "await_documents": i18n.N_("wait for the member's documents"),
    "decide": i18n.N_("decide after the investigation"),
    "publish": i18n.N_("published on the next publicity day"),
    "objections_close": i18n.N_("objections close"),
    "pay_out": i18n.N_("paid out after the period is collected"),
    "jury_decides": i18n.N_("the member jury decides"),
    "dispute_window": i18n.N_("the claimant may dispute"),
    "none": i18n.N_("nothing more to do"),
}


# --- work queue -----------------------------------------------------------------------------------


@router.get("/staff")
def queue(page: Page) -> HTMLResponse:
    actor = page.need(*STAFF)
    params = page.request.query_params
    chosen = params.get("state", "todo")
    if chosen == "todo":
        states = list(DEFAULT_QUEUE[actor.role])
    elif chosen in set(ClaimState):
        states = [ClaimState(chosen)]
    else:
        states = []
    plan = params.get("plan") or None
    mine = params.get("mine") == "1" or (chosen == "todo" and actor.role is Role.INVESTIGATOR)
    items = work_queue(
        page.ctx, actor, states=states or None, plan_code=plan, assigned_to_me=mine, limit=200
    )
    template = (
        "staff/queue_rows.html" if page.request.headers.get("HX-Request") else "staff/queue.html"
    )
    return render(
        page,
        template,
        items=items,
        details=queue_details(page.ctx, actor, [item.ref for item in items]),
        step_name=i18n.named(page.lang, STEP_NAMES),
        chosen=chosen,
        plan_code=plan or "",
        mine=mine,
        states=list(ClaimState),
        plans=list_plans(page.ctx),
    )


# --- the case file --------------------------------------------------------------------------------


def _case_context(page: PageState, ref: str) -> dict[str, Any]:
    actor = page.need(*STAFF)
    claim = get_claim(page.ctx, actor, ref)
    _, rules = plan_rules(page.ctx, claim.plan_code)
    investigators = (
        staff_members(page.ctx, actor, (Role.INVESTIGATOR, Role.REVIEWER))
        if actor.role in DECIDERS and claim.state is ClaimState.IN_REVIEW
        else []
    )
    return {
        "claim": claim,
        "rules": rules,
        "zone": rules.zone,
        "illness": rules.illness(claim.illness_code),
        "timeline": claim_timeline(page.ctx, actor, ref),
        "extras": case_file_extras(page.ctx, actor, ref),
        "detail": queue_details(page.ctx, actor, [ref]).get(ref),
        "step_name": i18n.named(page.lang, STEP_NAMES),
        "juries": jury_rounds(page.ctx, ref),
        "investigators": [s for s in investigators if s.id != actor.account_id],
        "reasons": list(RejectionReason),
        "is_decider": actor.role in DECIDERS,
        "is_investigator": claim.investigator_id is not None
        and claim.investigator_id == actor.account_id,
        "is_operator": actor.role is Role.OPERATOR,
        "can_open_evidence": actor.role in EVIDENCE_READERS,
    }


@router.get("/staff/claims/{ref}")
def case_file(ref: str, page: Page) -> HTMLResponse:
    return render(page, "staff/case.html", **_case_context(page, ref))


def _step(page: PageState, ref: str, action: object) -> Response:
    try:
        action()  # type: ignore[operator]
    except DomainError as error:
        return render_form(page, "staff/case.html", error, **_case_context(page, ref))
    return redirect(f"/staff/claims/{ref}", ok="done")


@router.get("/staff/claims/{ref}/evidence/{evidence_id}")
def evidence_viewer(ref: str, evidence_id: Int64, page: Page) -> HTMLResponse:
    """One document of the case file; the file itself is fetched (and its access audited) below."""
    actor = page.need(*EVIDENCE_READERS)
    items = list_evidence(page.ctx, actor, ref)
    position = next((i for i, e in enumerate(items) if e.id == evidence_id), None)
    if position is None:
        raise NotFound("evidence_not_found", "there is no such page")
    return render(
        page,
        "staff/evidence.html",
        ref=ref,
        item=items[position],
        previous=items[position - 1] if position else None,
        following=items[position + 1] if position + 1 < len(items) else None,
        count=len(items),
        position=position + 1,
    )


@router.get("/staff/claims/{ref}/evidence/{evidence_id}/file")
def evidence_file(ref: str, evidence_id: Int64, page: Page) -> Response:
    actor = page.need(*EVIDENCE_READERS)
    view, content = open_evidence(page.ctx, actor, ref, evidence_id)
    # The type was checked against the file's first bytes at upload, so the browser may show it
    # (the page's script policy is left off here: a PDF viewer is a plugin).
    return StreamingResponse(
        content,
        media_type=view.media_type,
        headers={
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "frame-ancestors 'none'",
            "Content-Disposition": f'inline; filename="{view.sha256[:16]}"',
        },
    )


@router.post("/staff/claims/{ref}/review")
def review(ref: str, page: Page) -> Response:
    actor = page.need(*DECIDERS)
    return _step(
        page,
        ref,
        lambda: start_review(page.ctx, actor, ref, idempotency_key=page.text("form_key") or None),
    )


@router.post("/staff/claims/{ref}/assign")
def assign(ref: str, page: Page) -> Response:
    actor = page.need(*DECIDERS)

    def act() -> None:
        try:
            investigator = parse_int64(page.text("investigator_id"))
        except ValueError:
            raise DomainError(
                "investigator_required", "choose an investigator", "investigator_id"
            ) from None
        assign_investigation(
            page.ctx, actor, ref, investigator, idempotency_key=page.text("form_key") or None
        )

    return _step(page, ref, act)


@router.post("/staff/claims/{ref}/request-documents")
def ask_documents(ref: str, page: Page) -> Response:
    actor = page.need(Role.INVESTIGATOR, Role.REVIEWER)
    return _step(
        page,
        ref,
        lambda: request_documents(
            page.ctx,
            actor,
            ref,
            page.text("message"),
            idempotency_key=page.text("form_key") or None,
        ),
    )


@router.post("/staff/claims/{ref}/report")
def report(ref: str, page: Page) -> Response:
    actor = page.need(Role.INVESTIGATOR, Role.REVIEWER)

    def act() -> None:
        cost = parse_yuan(page.text("cost") or "0", "cost")
        file_investigation_report(
            page.ctx,
            actor,
            ref,
            page.text("findings"),
            page.text("recommendation"),
            cost,
            idempotency_key=page.text("form_key") or None,
        )

    return _step(page, ref, act)


@router.post("/staff/claims/{ref}/decision")
def decision(ref: str, page: Page) -> Response:
    actor = page.need(*DECIDERS)

    def act() -> None:
        outcome = page.text("outcome")
        if outcome not in ("approve", "reject"):
            raise DomainError("outcome_required", "choose approve or reject", "outcome")
        if outcome == "approve" and page.text("confirm") != "yes":
            # Approving commits every member to share the aid: the form shows the amount.
            raise DomainError("confirm_required", "tick the box to confirm", "confirm")
        reason = page.text("reason_code")
        decide_claim(
            page.ctx,
            actor,
            ref,
            approve=outcome == "approve",
            reason_code=RejectionReason(reason) if reason in set(RejectionReason) else None,
            note=page.text("note"),
            idempotency_key=page.text("form_key") or None,
        )

    return _step(page, ref, act)


@router.post("/staff/claims/{ref}/jury")
def refer(ref: str, page: Page) -> Response:
    actor = page.need(Role.OPERATOR)

    def act() -> None:
        refer_to_jury(page.ctx, actor, ref, page.text("note"))

    return _step(page, ref, act)


# --- objections -----------------------------------------------------------------------------------


@router.get("/staff/objections")
def objections(page: Page) -> HTMLResponse:
    actor = page.need(Role.REVIEWER, Role.OPERATOR, Role.AUDITOR)
    state = page.request.query_params.get("state", "pending")
    state = state if state in ("pending", "upheld", "dismissed") else "pending"
    return render(
        page,
        "staff/objections.html",
        items=objections_to_review(page.ctx, actor, state=state),
        state=state,
    )


@router.post("/staff/objections/{objection_id}/review")
def objection_review(objection_id: Int64, page: Page) -> Response:
    actor = page.need(*DECIDERS)
    ref = page.text("claim_ref")
    try:
        outcome = page.text("outcome")
        if outcome not in ("uphold", "dismiss"):
            raise DomainError("outcome_required", "choose uphold or dismiss", "outcome")
        review_objection(
            page.ctx,
            actor,
            objection_id,
            uphold=outcome == "uphold",
            note=page.text("note"),
            idempotency_key=page.text("form_key") or None,
        )
    except DomainError as error:
        if ref:
            return render_form(page, "staff/case.html", error, **_case_context(page, ref))
        return render_form(
            page,
            "staff/objections.html",
            error,
            items=objections_to_review(page.ctx, actor),
            state="pending",
        )
    return redirect(f"/staff/claims/{ref}" if ref else "/staff/objections", ok="done")


# --- the operator's desk --------------------------------------------------------------------------


def _counts(page: PageState, *names: str) -> dict[str, int] | None:
    """Whole numbers a redirect-after-post carried in the query (None if any is missing)."""
    params = page.request.query_params
    try:
        return {name: int(params[name]) for name in names}
    except (KeyError, ValueError):
        return None


def _operations_result(page: PageState) -> str | None:
    """What the last run did, told on the page the run redirected to (POST → 303 → GET)."""
    ran = page.request.query_params.get("ran")
    if ran == "publicity":
        counts = _counts(page, "published", "approved", "held")
        code = page.request.query_params.get("plan", "")
        if counts is None or not code:
            return None
        _, rules = plan_rules(page.ctx, code)
        told = page.lang.gettext(
            "Publicity run for {plan}: {published} published, {approved} approved, "
            "{held} held by objections",
            plan=code,
            **counts,
        )
        today = local_date(page.ctx.clock.now(), rules.zone)
        if today.day not in rules.periods.publicity_days:
            told += " " + page.lang.gettext(
                "Today is not a publicity day: approved cases are published on the next one, "
                "{day}.",
                day=page.lang.date(next_publicity_day(rules, today)),
            )
        return told
    if ran == "juries":
        counts = _counts(page, "closed", "approved", "rejected", "rounds")
        if counts is None:
            return None
        return page.lang.gettext(
            "Juries closed: {closed} ({approved} approved, {rejected} rejected, "
            "{rounds} new rounds)",
            **counts,
        )
    return None


@router.get("/staff/operations")
def operations(page: Page) -> HTMLResponse:
    page.need(*DESK)
    return render(
        page,
        "staff/operations.html",
        plans=list_plans(page.ctx),
        result=_operations_result(page),
    )


@router.post("/staff/plans/{code}/publicity")
def publicity(code: str, page: Page) -> Response:
    actor = page.need(Role.OPERATOR)
    result = run_publicity(page.ctx, code, actor)
    return redirect(
        "/staff/operations?"
        + urlencode(
            {
                "ran": "publicity",
                "plan": code,
                "published": result.published,
                "approved": result.approved,
                "held": result.held_by_objections,
            }
        )
    )


@router.post("/staff/juries/close")
def close_juries(page: Page) -> Response:
    actor = page.need(Role.OPERATOR)
    result = close_due_juries(page.ctx, actor)
    return redirect(
        "/staff/operations?"
        + urlencode(
            {
                "ran": "juries",
                "closed": result.closed,
                "approved": result.approved,
                "rejected": result.rejected,
                "rounds": result.new_rounds,
            }
        )
    )


@router.get("/staff/plans/{code}")
def plan_config(code: str, page: Page) -> HTMLResponse:
    page.need(*DESK)
    view, rules = plan_rules(page.ctx, code)
    return render(
        page, "staff/plan.html", plan=view, rules=rules, source=plan_source(page.ctx, code)
    )


@router.post("/staff/plans/{code}/versions")
def publish(code: str, page: Page) -> Response:
    actor = page.need(Role.OPERATOR)
    view, rules = plan_rules(page.ctx, code)
    source = page.raw("source")
    try:
        upload = page.file("plan_file")
        if upload is not None:
            data = upload.file.read(1024 * 1024 + 1)
            if len(data) > 1024 * 1024:
                raise DomainError(
                    "file_too_large",
                    "a plan file is at most 1 MB",
                    "plan_file",
                    details={"max_bytes": 1024 * 1024},
                )
            try:
                source = data.decode("utf-8")
            except UnicodeDecodeError:
                raise DomainError(
                    "invalid_plan",
                    "the plan file is not UTF-8 text",
                    "plan_file",
                    details={"variant": "encoding"},
                ) from None
        if not source.strip():
            raise DomainError(
                "invalid_plan",
                "paste the plan file or choose it",
                "source",
                details={"variant": "empty"},
            )
        published = publish_plan(page.ctx, actor, source)
        if published.plan.code != code:
            # Publishing stored it under its own code: say so rather than pretend.
            return redirect(f"/staff/plans/{published.plan.code}", ok="plan_published")
    except DomainError as error:
        problems = error.details.get("problems") or [
            {"field": error.field, "message": error.message}
        ]
        return render(
            page,
            "staff/plan.html",
            status_code=422,
            plan=view,
            rules=rules,
            source=source,
            key_problems=problems,
            problems=page.lang.problems(error),
        )
    return redirect(
        f"/staff/plans/{code}",
        ok="plan_published" if published.created_version else "plan_unchanged",
    )


# --- periods: preview, close, collection file ------------------------------------------------------


def _periods_context(page: PageState, code: str, on: date | None = None) -> dict[str, Any]:
    actor = page.need(*DESK)
    view, rules = plan_rules(page.ctx, code)
    return {
        "plan": view,
        "rules": rules,
        "zone": rules.zone,
        "periods": list_periods(page.ctx, code, limit=48),
        "preview": preview_period(page.ctx, actor, code, on),
    }


@router.get("/staff/plans/{code}/periods")
def periods(code: str, page: Page) -> HTMLResponse:
    on = page.request.query_params.get("on")
    try:
        chosen = date.fromisoformat(on) if on else None
    except ValueError:
        chosen = None
    try:
        context = _periods_context(page, code, chosen)
    except DomainError as error:  # e.g. a day that is not a publicity day
        return render_form(page, "staff/periods.html", error, **_periods_context(page, code, None))
    return render(page, "staff/periods.html", imported=_imported(page, code), **context)


@dataclass(frozen=True, slots=True)
class _Imported:
    period_ref: str
    collected_fen: int
    failed_fen: int


def _imported(page: PageState, code: str) -> _Imported | None:
    """A results import's totals, carried by its redirect-after-post."""
    counts = _counts(page, "collected", "failed")
    try:
        day = date.fromisoformat(page.request.query_params.get("imported", ""))
    except ValueError:
        return None
    if counts is None:
        return None
    return _Imported(period_ref(code, day), counts["collected"], counts["failed"])


@router.post("/staff/plans/{code}/periods/close")
def close(code: str, page: Page) -> Response:
    actor = page.need(Role.OPERATOR)
    try:
        on = date.fromisoformat(page.text("on"))
        if page.text("confirm") != "yes":
            # Closing charges every member and cannot be undone: the form shows the amounts.
            raise DomainError("confirm_required", "tick the box to confirm", "confirm")
        close_period(page.ctx, actor, code, on)
    except ValueError:
        return redirect(f"/staff/plans/{code}/periods")
    except DomainError as error:
        return render_form(page, "staff/periods.html", error, **_periods_context(page, code))
    return redirect(f"/staff/plans/{code}/periods", ok="period_closed")


@router.get("/staff/plans/{code}/periods/{publicity_on}/collection.csv")
def collection_file(code: str, publicity_on: date, page: Page) -> Response:
    page.need(Role.OPERATOR)
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - streamed below
    export_collection_file(page.ctx, code, publicity_on, spool)
    spool.seek(0)

    def stream() -> Iterator[bytes]:
        with spool:
            while block := spool.read(64 * 1024):
                yield block

    return StreamingResponse(
        stream(),
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="collection-{code}-{publicity_on}.csv"'
        },
    )


@router.post("/staff/plans/{code}/periods/{publicity_on}/results")
def collection_results(code: str, publicity_on: date, page: Page) -> Response:
    actor = page.need(Role.OPERATOR)
    try:
        upload = page.file("results")
        if upload is None:
            raise DomainError(
                "file_required",
                "choose the provider's results file",
                "results",
                details={"variant": "results"},
            )
        lines = (line.decode("utf-8") for line in upload.file)
        result = import_collection_results(page.ctx, actor, code, publicity_on, lines)
    except (DomainError, UnicodeDecodeError) as error:
        refusal = (
            error
            if isinstance(error, DomainError)
            else DomainError(
                "invalid_results_file",
                "the results file is not UTF-8 text",
                "results",
                details={"variant": "encoding"},
            )
        )
        return render_form(page, "staff/periods.html", refusal, **_periods_context(page, code))
    return redirect(
        f"/staff/plans/{code}/periods?"
        + urlencode(
            {
                "imported": publicity_on.isoformat(),
                "collected": result.collected_fen,
                "failed": result.failed_fen,
            }
        )
    )


@router.get("/staff/dashboard")
def dashboard(page: Page) -> HTMLResponse:
    actor = page.need(*DESK)
    plans = list_plans(page.ctx)
    busiest = max(plans, key=lambda p: p.active_members).plan.code if plans else ""
    code = page.request.query_params.get("plan") or busiest
    if not code:
        return render(
            page, "staff/dashboard.html", plans=plans, board=None, stats=None, plan_code=""
        )
    return render(
        page,
        "staff/dashboard.html",
        plans=plans,
        plan_code=code,
        board=operator_dashboard(page.ctx, actor, code),
        stats=plan_statistics(page.ctx, code),
        periods=list_periods(page.ctx, code, limit=24),
    )


@router.get("/staff/audit")
def audit(page: Page) -> HTMLResponse:
    actor = page.need(*DESK)
    params = page.request.query_params

    def number(name: str) -> int | None:
        value = params.get(name, "").strip()
        return parse_int64(value) if value.isdigit() and len(value) < 19 else None

    def day(name: str, end: bool = False) -> datetime | None:
        value = params.get(name, "").strip()
        try:
            parsed = datetime.strptime(value, "%Y-%m-%d").date()
        except ValueError:
            return None
        start = datetime.combine(
            parsed + timedelta(days=1 if end else 0), time.min, tzinfo=DEFAULT_ZONE
        )
        return start.astimezone(UTC)

    where = AuditFilter(
        action=params.get("action") or None,
        subject_type=params.get("subject_type") or None,
        subject_id=number("subject_id"),
        actor_account_id=number("actor"),
        since=day("since"),
        until=day("until", end=True),
    )
    result = search_audit(page.ctx, actor, where, before_id=number("before"))
    query = [(k, v) for k, v in params.multi_items() if k not in ("before", "lang", "ok")]
    return render(page, "staff/audit.html", result=result, filters=dict(params), query=query)
