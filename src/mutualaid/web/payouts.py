"""The operator console's payout desk (/staff/payouts): approved payouts of collected periods,
their transfers, release with a confirmation showing the amount (a second, different operator
above the plan's four-eyes amount), send and resend through the plan's provider."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi.responses import HTMLResponse, Response

from mutualaid.domain.accounts import Role
from mutualaid.domain.errors import DomainError
from mutualaid.services.payments.payout_desk import (
    DESK_ROLES,
    PayoutLine,
    payout_desk,
    plan_of_claim,
    release_for_payment,
    resend_transfer,
    send_transfer,
)
from mutualaid.services.payments.providers import payment_rules
from mutualaid.services.payments.transfers import transfer_client
from mutualaid.services.plans.plans import list_plans
from mutualaid.web import i18n
from mutualaid.web.pages import chosen_plan, page_router, redirect, render, render_form
from mutualaid.web.sessions import Page, PageState

router = page_router()

#: A payout's transfer as the desk shows it (payout_desk.PayoutLine.status).
TRANSFER_NAMES = {
    "to_release": i18n.N_("to be released"),
    "held": i18n.N_("waiting for a second release"),
    "ready": i18n.N_("released, ready to send"),
    "pending": i18n.N_("sent, waiting for the provider"),
    "paid": i18n.N_("settled"),
    "failed": i18n.N_("failed"),
}


def _desk(page: PageState, plan_code: str | None = None) -> dict[str, Any]:
    actor = page.need(*DESK_ROLES)
    plans = list_plans(page.ctx)
    code = plan_code or chosen_plan(page, plans)
    rules = payment_rules(page.ctx, code) if code else None
    return {
        "plans": plans,
        "plan_code": code,
        "lines": payout_desk(page.ctx, actor, code) if code else [],
        "four_eyes_fen": rules.four_eyes_above_fen if rules else None,
        "provider": rules.provider if rules else "",
        "is_operator": actor.role is Role.OPERATOR,
        "transfer_name": i18n.named(page.lang, TRANSFER_NAMES),
    }


def _line(page: PageState, plan_code: str, ref: str) -> PayoutLine | None:
    return next((line for line in _desk(page, plan_code)["lines"] if line.claim_ref == ref), None)


def _back(plan_code: str) -> str:
    return f"/staff/payouts?plan={quote(plan_code)}"


@router.get("/staff/payouts")
def desk(page: Page) -> HTMLResponse:
    return render(page, "staff/payouts.html", **_desk(page))


@router.get("/staff/payouts/{ref}/release")
def confirm_release(ref: str, page: Page) -> HTMLResponse:
    """The confirmation step: the amount, and whether a second operator must release too."""
    page.need(Role.OPERATOR)
    code = plan_of_claim(page.ctx, ref)
    return render(
        page, "staff/payout_release.html", line=_line(page, code, ref), **_desk(page, code)
    )


@router.post("/staff/payouts/{ref}/release")
def release(ref: str, page: Page) -> Response:
    actor = page.need(Role.OPERATOR)
    code = plan_of_claim(page.ctx, ref)
    try:
        if page.text("confirm") != "yes":
            raise DomainError("confirm_required", "tick the box to confirm", "confirm")
        view = release_for_payment(page.ctx, actor, ref)
    except DomainError as error:
        return render_form(
            page,
            "staff/payout_release.html",
            error,
            line=_line(page, code, ref),
            **_desk(page, code),
        )
    return redirect(_back(code), ok="payout_held" if view.status == "held" else "payout_released")


def _send(page: PageState, ref: str, resend: bool) -> Response:
    actor = page.need(Role.OPERATOR)
    code = plan_of_claim(page.ctx, ref)
    try:
        with transfer_client(page.ctx, code) as client:
            if resend:
                view = resend_transfer(page.ctx, actor, ref, client)
            else:
                view = send_transfer(page.ctx, actor, ref, client)
    except DomainError as error:
        return render_form(page, "staff/payouts.html", error, **_desk(page, code))
    outcomes = {"failed": "transfer_failed", "paid": "transfer_settled"}
    return redirect(_back(code), ok=outcomes.get(view.status, "transfer_sent"))


@router.post("/staff/payouts/{ref}/send")
def send(ref: str, page: Page) -> Response:
    return _send(page, ref, resend=False)


@router.post("/staff/payouts/{ref}/resend")
def resend(ref: str, page: Page) -> Response:
    return _send(page, ref, resend=True)
