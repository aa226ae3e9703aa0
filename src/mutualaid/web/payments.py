"""My payments (issue 17): how I pay, every debit with the provider's reference, paying an unpaid
share now, signing the Alipay withholding agreement and topping up a prepaid plan."""

from __future__ import annotations

from fastapi.responses import HTMLResponse, Response

from mutualaid.adapters import Int64
from mutualaid.domain.accounts import Role
from mutualaid.domain.errors import DomainError
from mutualaid.services.payments.agreements import start_agreement
from mutualaid.services.payments.member_payments import (
    my_payments,
    pay_share_now,
    top_up_in_yuan,
)
from mutualaid.web.i18n import N_
from mutualaid.web.pages import page_router, redirect, render, render_form
from mutualaid.web.sessions import Page, PageState

router = page_router()

TEMPLATE = "members/payments.html"

#: A debit's or an agreement's status, as the member reads it.
STATUS_NAMES = {
    "pending": N_("waiting for the provider"),
    "paid": N_("paid"),
    "failed": N_("failed"),
    "active": N_("signed and active"),
    "ended": N_("ended"),
}


def _refused(page: PageState, error: DomainError) -> Response:
    payments = my_payments(page.ctx, page.need())
    return render_form(page, TEMPLATE, error, payments=payments, statuses=STATUS_NAMES)


@router.get("/me/payments")
def payments_page(page: Page) -> HTMLResponse:
    actor = page.need(Role.MEMBER)
    return render(page, TEMPLATE, payments=my_payments(page.ctx, actor), statuses=STATUS_NAMES)


@router.post("/me/payments/shares/{failure_id}/pay")
def pay_now(failure_id: Int64, page: Page) -> Response:
    actor = page.need(Role.MEMBER)
    try:
        pay_share_now(page.ctx, actor, failure_id, idempotency_key=page.text("form_key") or None)
    except DomainError as error:
        return _refused(page, error)
    return redirect("/me/payments", ok="share_paid")


@router.post("/me/payments/top-up")
def top_up(page: Page) -> Response:
    actor = page.need(Role.MEMBER)
    try:
        top_up_in_yuan(
            page.ctx,
            actor,
            page.text("plan_code"),
            page.text("amount"),
            idempotency_key=page.text("form_key") or None,
        )
    except DomainError as error:
        return _refused(page, error)
    return redirect("/me/payments", ok="topped_up")


@router.post("/me/payments/agreement")
def sign_agreement(page: Page) -> Response:
    """Start (or resume) signing the Alipay withholding agreement: off to Alipay's sign page,
    which comes back here; the agreement is active once Alipay's notification arrives."""
    actor = page.need(Role.MEMBER)
    back = str(page.request.url_for("payments_page"))
    try:
        sign = start_agreement(page.ctx, actor, back)
    except DomainError as error:
        return _refused(page, error)
    if not sign.url:
        return redirect("/me/payments", ok="agreement_active")
    # A link, not a redirect: the pages' CSP (form-action 'self') keeps a form's answer on this
    # site. Starting again answers the same pending agreement, so a reload changes nothing.
    payments = my_payments(page.ctx, actor)
    return render(page, TEMPLATE, payments=payments, statuses=STATUS_NAMES, sign_url=sign.url)
