"""Member pages: register, log in and out, join a plan (self and family), my coverage, leave,
notifications, and downloading my data."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from fastapi.responses import HTMLResponse, Response

from mutualaid.adapters import Int64
from mutualaid.domain.accounts import STAFF_ROLES, Role
from mutualaid.domain.calendars import local_date
from mutualaid.domain.errors import DomainError, NotFound
from mutualaid.domain.memberships import MembershipEvent, Relation
from mutualaid.services.accounts.accounts import Actor, log_in, log_out, register_account
from mutualaid.services.accounts.rate_limits import check_registration
from mutualaid.services.accounts.second_factors import SecondFactorRequired, sign_in
from mutualaid.services.claims.casework import claims_reported_by, objections_filed_by
from mutualaid.services.enrollment.age_out_moves import (
    AgeOutMoveView,
    age_out_move,
    set_age_out_move,
)
from mutualaid.services.enrollment.debit_authorisations import needs_debit_agreement
from mutualaid.services.enrollment.joins import EnrollmentRequest, enroll_member
from mutualaid.services.enrollment.member_data import family_coverage
from mutualaid.services.enrollment.memberships import change_membership as change
from mutualaid.services.notifications import list_notifications, mark_read
from mutualaid.services.periods.proofs import (
    charge_proof,
    charge_proof_file_name,
    published_trust,
)
from mutualaid.services.periods.statements import account_statements, charged_in_year
from mutualaid.services.plans.plans import list_plans, plan_rules
from mutualaid.services.risk.fraud_records import appeal_fraud_record, my_fraud_records
from mutualaid.services.wind_down.exports import member_record, member_record_csv
from mutualaid.transparency.charge_proofs import (
    LINKS,
    ChargeProof,
    ChargeProofError,
    verify_charge_proof,
)
from mutualaid.transparency.verification import Check
from mutualaid.web.messages import send_code_after_registering
from mutualaid.web.pages import page_router, redirect, render, render_form
from mutualaid.web.second_factors import second_step
from mutualaid.web.sessions import Page, PageState, client_address, safe_next

router = page_router()


def _home_for(page: PageState, role: Role) -> str:
    return "/staff" if role in STAFF_ROLES else "/me"


# --- accounts -------------------------------------------------------------------------------------


@router.get("/register")
def register_form(page: Page) -> HTMLResponse:
    return render(page, "members/register.html")


@router.post("/register")
def register(page: Page) -> Response:
    phone, password = page.text("phone"), page.raw("password")
    try:
        if password != page.raw("password_again"):
            raise DomainError("passwords_differ", "the two passwords differ", "password_again")
        check_registration(page.ctx, phone, client_address(page))
        account = register_account(
            page.ctx,
            phone,
            password,
            display_name=page.text("display_name") or None,
            locale=page.lang.code,
            invitation=page.text("invitation") or None,
        )
        issued = log_in(page.ctx, phone, password)
    except DomainError as error:
        return render_form(page, "members/register.html", error)
    send_code_after_registering(page, account.id)
    page.start_session(issued.token, page.ctx.token_ttl_hours * 3600)
    return redirect("/me", ok="registered")


@router.get("/login")
def login_form(page: Page) -> HTMLResponse:
    return render(
        page, "members/login.html", next=safe_next(page.request.query_params.get("next"), "")
    )


@router.post("/login")
def login(page: Page) -> Response:
    phone, password = page.text("phone"), page.raw("password")
    target = safe_next(page.text("next"), "")
    address = client_address(page)
    try:
        issued = sign_in(page.ctx, phone, password, None, address)
    except SecondFactorRequired as step:
        return second_step(page, step, target)
    except DomainError as error:
        return render_form(page, "members/login.html", error, next=target)
    if page.session_token:
        log_out(page.ctx, page.session_token)
    page.start_session(issued.token, page.ctx.token_ttl_hours * 3600)
    return redirect(target or _home_for(page, issued.account.role), ok="logged_in")


@router.post("/logout")
def logout(page: Page) -> Response:
    if page.session_token:
        log_out(page.ctx, page.session_token)
    page.end_session()
    return redirect("/", ok="logged_out")


# --- my cover -------------------------------------------------------------------------------------


@router.get("/me")
def me(page: Page) -> HTMLResponse:
    actor = page.need()
    if actor.role in STAFF_ROLES:
        return render(page, "members/staff_me.html")
    return render(page, "members/me.html", **_my_page(page, actor))


def _my_page(page: PageState, actor: Actor) -> dict[str, Any]:
    coverage = family_coverage(page.ctx, actor)
    return {
        "coverage": coverage,
        "moves": _age_out_moves(page, actor, [c.membership_id for c in coverage if c.active]),
        "claims": claims_reported_by(page.ctx, actor),
        "objections": objections_filed_by(page.ctx, actor),
        "plans": list_plans(page.ctx),
        "fraud_records": my_fraud_records(page.ctx, actor),
    }


def _age_out_moves(
    page: PageState, actor: Actor, membership_ids: list[int]
) -> dict[int, AgeOutMoveView]:
    """The age-out moves a member may choose now (their plan has one, and they are old enough)."""
    moves = {}
    today = page.ctx.clock.now().date()
    for membership_id in membership_ids:
        try:
            move = age_out_move(page.ctx, actor, membership_id)
        except DomainError:  # no_age_out_move: the plan has none
            continue
        if move.moved_at is None and move.opt_in_from_on <= today:
            moves[membership_id] = move
    return moves


@router.post("/me/memberships/{membership_id}/age-out-move")
def choose_age_out_move(membership_id: Int64, page: Page) -> Response:
    """The toggle on the member page: move into the plan named when ageing out, or not."""
    actor = page.need(Role.MEMBER)
    try:
        set_age_out_move(
            page.ctx,
            actor,
            membership_id,
            page.text("opted_in") == "yes",
            idempotency_key=page.text("form_key") or None,
        )
    except DomainError as error:
        return render_form(page, "members/me.html", error, **_my_page(page, actor))
    return redirect("/me", ok="age_out_move")


@router.post("/me/fraud-records/{record_id}/appeal")
def appeal(record_id: Int64, page: Page) -> Response:
    actor = page.need(Role.MEMBER)
    try:
        appeal_fraud_record(page.ctx, actor, record_id, page.text("reason"))
    except DomainError as error:
        return render_form(page, "members/me.html", error, **_my_page(page, actor))
    return redirect("/me", ok="appealed")


def _enrollment_context(page: PageState, code: str) -> dict[str, Any]:
    view, rules = plan_rules(page.ctx, code)
    has_self = any(
        c.relation is Relation.SELF and c.active
        for c in family_coverage(page.ctx, page.need(Role.MEMBER))
    )
    fee_bp = rules.fees.management_fee_bp
    return {
        "plan": view,
        "rules": rules,
        "fee_percent": f"{fee_bp // 100}.{fee_bp % 100:02d}%",
        "debit_by_alipay": needs_debit_agreement(rules),
        "zone": rules.zone,
        "has_self": has_self,
        "relations": [r for r in Relation if not (has_self and r is Relation.SELF)],
    }


@router.get("/plans/{code}/join")
def join_form(code: str, page: Page) -> HTMLResponse:
    page.need(Role.MEMBER)
    return render(page, "members/join.html", **_enrollment_context(page, code))


@router.post("/plans/{code}/join")
def join(code: str, page: Page) -> Response:
    actor = page.need(Role.MEMBER)
    context = _enrollment_context(page, code)
    rules = plan_rules(page.ctx, code)[1]
    answers: dict[str, bool] = {}
    for question in rules.health_questions:
        answer = page.text(f"health_answers.{question.code}")
        if answer in ("yes", "no"):
            answers[question.code] = answer == "yes"
    try:
        relation = Relation(page.text("relation") or "self")
    except ValueError:
        relation = Relation.SELF
    try:
        enroll_member(
            page.ctx,
            actor,
            code,
            EnrollmentRequest(
                full_name=page.text("full_name"),
                id_number=page.text("id_number"),
                relation=relation,
                health_answers=answers,
                # The box ticked: the member agrees to the rules the form showed them.
                rules_sha256=page.text("rules_sha256") if page.text("consent") == "yes" else None,
            ),
            idempotency_key=page.text("form_key") or None,
        )
    except DomainError as error:
        return render_form(page, "members/join.html", error, **context)
    return redirect("/me", ok="enrolled")


@router.get("/me/memberships/{membership_id}/leave")
def leave_form(membership_id: Int64, page: Page) -> Response:
    actor = page.need(Role.MEMBER)
    coverage = next(
        (
            c
            for c in family_coverage(page.ctx, actor)
            if c.membership_id == membership_id and c.active
        ),
        None,
    )
    if coverage is None:
        return redirect("/me")
    return render(page, "members/leave.html", coverage=coverage)


@router.post("/me/memberships/{membership_id}/leave")
def leave(membership_id: Int64, page: Page) -> Response:
    actor = page.need(Role.MEMBER)
    if page.text("confirm") != "yes":
        coverage = next(
            (c for c in family_coverage(page.ctx, actor) if c.membership_id == membership_id), None
        )
        return render_form(
            page,
            "members/leave.html",
            DomainError("confirm_required", "tick the box to confirm", "confirm"),
            coverage=coverage,
        )
    change(
        page.ctx,
        actor,
        membership_id,
        MembershipEvent.LEAVE,
        reason=page.text("reason") or None,
        idempotency_key=page.text("form_key") or None,
    )
    return redirect("/me", ok="left")


@router.get("/me/statement")
def statement(page: Page) -> HTMLResponse:
    actor = page.need(Role.MEMBER)
    statements = account_statements(page.ctx, actor)
    rules = {code: plan_rules(page.ctx, code)[1] for code in {s.plan_code for s in statements}}
    now = page.ctx.clock.now()
    year = {s.membership_id: local_date(now, rules[s.plan_code].zone).year for s in statements}
    this_year = {s.membership_id: charged_in_year(s, year[s.membership_id]) for s in statements}
    return render(
        page,
        "members/statement.html",
        statements=statements,
        year=year,
        this_year=this_year,
        caps={code: r.caps.annual_fen for code, r in rules.items()},
        household_charged_fen=sum(s.charged_fen for s in statements),
        household_paid_fen=sum(s.paid_fen for s in statements),
        household_year_fen=sum(this_year.values()),
    )


@router.get("/me/statement/{membership_id}/{publicity_on}")
def charge_check(membership_id: Int64, publicity_on: date, page: Page) -> HTMLResponse:
    """The member's charge proof, checked here link by link with the keys the operator published,
    and offered as a file to check offline with keys obtained from the witnesses."""
    actor = page.need(Role.MEMBER)
    plan_code = _statement_plan(page, actor, membership_id)
    try:
        proof = charge_proof(page.ctx, actor, membership_id, plan_code, publicity_on)
    except DomainError as error:
        if error.code != "commitment_not_yet_checkpointed":
            raise
        return render(
            page,
            "members/charge_proof.html",
            proof=None,
            pending=True,
            plan_code=plan_code,
            publicity_on=publicity_on,
        )
    trust = published_trust(page.ctx)
    checks: tuple[Check, ...]
    try:
        report = verify_charge_proof(proof, trust)
        checks, failure, share = report.checks, None, report.commitment.fields.get("share_fen")
    except ChargeProofError as error:
        checks, failure, share = error.checks, error.message, None
    return render(
        page,
        "members/charge_proof.html",
        proof=proof,
        pending=False,
        plan_code=plan_code,
        publicity_on=publicity_on,
        checks=checks,
        unchecked=LINKS[len(checks) :],
        failure=failure,
        share_fen=share,
        trust=trust,
        file_name=charge_proof_file_name(proof),
        download=f"/me/statement/{membership_id}/{publicity_on.isoformat()}/charge-proof.json",
    )


@router.get("/me/statement/{membership_id}/{publicity_on}/charge-proof.json")
def charge_proof_file(membership_id: Int64, publicity_on: date, page: Page) -> Response:
    """The charge proof file (`mutualaid verify charge` checks it offline)."""
    actor = page.need(Role.MEMBER)
    plan_code = _statement_plan(page, actor, membership_id)
    proof: ChargeProof = charge_proof(page.ctx, actor, membership_id, plan_code, publicity_on)
    return Response(
        proof.to_json(),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{charge_proof_file_name(proof)}"'},
    )


def _statement_plan(page: PageState, actor: Actor, membership_id: int) -> str:
    plan_code = next(
        (
            s.plan_code
            for s in account_statements(page.ctx, actor)
            if s.membership_id == membership_id
        ),
        None,
    )
    if plan_code is None:
        raise NotFound("membership_not_found", f"there is no membership {membership_id}")
    return plan_code


@router.get("/me/data.json")
def my_data(page: Page) -> Response:
    """Everything about the account and its family: memberships, statements, claims, refunds
    and the proofs that tie them to the public log."""
    actor = page.need()
    body = json.dumps(member_record(page.ctx, actor), ensure_ascii=False, indent=2)
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="my-mutualaid-data.json"'},
    )


@router.get("/me/data.csv")
def my_data_csv(page: Page) -> Response:
    actor = page.need()
    return Response(
        member_record_csv(member_record(page.ctx, actor)),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="my-mutualaid-data.csv"'},
    )


@router.get("/me/notifications")
def notifications(page: Page) -> HTMLResponse:
    actor = page.need()
    items = list_notifications(page.ctx, actor.account_id)
    if items:
        mark_read(page.ctx, actor.account_id, max(int(n["id"]) for n in items))
    return render(page, "members/notifications.html", items=items)
