"""Payments: the providers' notifications, debit agreements, payouts through a provider and
their four-eyes release."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from mutualaid.adapters import Int64
from mutualaid.api.dependencies import Context, CurrentActor, IdempotencyKey
from mutualaid.api.openapi import READ, SAFE_TO_RETRY, WRITE, errors, ok, raw
from mutualaid.services.collections.refunds import RefundView, mark_refund_paid, refunds_due
from mutualaid.services.payments.agreements import SignPage, start_agreement
from mutualaid.services.payments.callbacks import take_notification
from mutualaid.services.payments.member_payments import (
    PaidShare,
    PaymentsView,
    my_payments,
    pay_share_now,
)
from mutualaid.services.payments.providers import alipay_client
from mutualaid.services.payments.transfers import TransferView, release_payout, send_payouts

router = APIRouter(prefix="/api/v1/payments", tags=["payments"])


class AgreementRequest(BaseModel):
    return_url: str = Field(
        default="", max_length=500, description="Where Alipay sends the payer back"
    )


@router.post(
    "/{provider}/notify",
    operation_id="payments-notify",
    response_class=Response,
    responses=raw(
        ("text/plain",),
        "The plain text `success`, the answer Alipay's protocol requires (not JSON): the "
        "notification is taken in, and Alipay stops sending it",
    )
    | errors(400, 404, 413, 422, 429),
    dependencies=[SAFE_TO_RETRY],
)
async def notify(provider: str, request: Request, ctx: Context) -> PlainTextResponse:
    """The provider's asynchronous notification (form fields, signed). Answers the plain text
    `success` once it is taken in (Alipay's protocol requires exactly that text, and sends the
    notification again until it gets it). Safe to retry: a replay (same `notify_id`) finds its
    row and changes nothing. Errors: 400 `invalid_signature` (not signed by the provider),
    `no_notifications` (the provider sends none); 404: no such provider."""
    form = await request.form()
    params = {key: value for key, value in form.items() if isinstance(value, str)}
    take_notification(ctx, provider, params)
    return PlainTextResponse("success")


@router.post(
    "/alipay/agreements",
    operation_id="payments-agreement-start",
    response_model=None,
    responses=ok(SignPage) | WRITE,
    dependencies=[SAFE_TO_RETRY],
)
def agreement(body: AgreementRequest, ctx: Context, actor: CurrentActor) -> SignPage:
    """A payer starts (or resumes) their Alipay withholding agreement: the page to sign it.
    Safe to retry: a retry finds the pending (or active) agreement and answers it again."""
    return start_agreement(ctx, actor, body.return_url)


@router.get(
    "/mine",
    operation_id="payments-mine",
    response_model=None,
    responses=ok(PaymentsView) | READ,
)
def mine(ctx: Context, actor: CurrentActor) -> PaymentsView:
    """How I pay in each plan, my debit agreements, every debit with the provider's reference,
    and my shares still unpaid (each payable now)."""
    return my_payments(ctx, actor)


@router.post(
    "/shares/{failure_id}/pay",
    operation_id="payments-share-pay",
    response_model=None,
    responses=ok(PaidShare) | WRITE,
)
def pay_share(
    failure_id: Int64, ctx: Context, actor: CurrentActor, key: IdempotencyKey = None
) -> PaidShare:
    """Pay one of my unpaid shares now, through the plan's provider (a prepaid plan: from the
    balance). Send an Idempotency-Key: the provider is asked under it, so a retry takes no
    second debit. Errors: 409 `nothing_to_pay` (not mine, or not unpaid: paid already),
    `payment_declined` (the provider refused it; recorded), `provider_not_configured`."""
    return pay_share_now(ctx, actor, failure_id, idempotency_key=key)


@router.post(
    "/plans/{plan_code}/periods/{publicity_on}/transfers",
    operation_id="payments-transfers-send",
    response_model=None,
    responses=ok(list[TransferView]) | WRITE,
    dependencies=[SAFE_TO_RETRY],
)
def transfers(
    plan_code: str, publicity_on: date, ctx: Context, actor: CurrentActor
) -> list[TransferView]:
    """Operators: transfer the period's approved payouts through Alipay (each once); a payout
    above the plan's four-eyes amount waits for two releases. Safe to retry: each payout is
    sent under one out_biz_no (`payout:<claim>`, UNIQUE), so a retry sends only those still
    ready and answers the others' state."""
    with alipay_client(ctx) as client:
        return send_payouts(ctx, actor, plan_code, publicity_on, client)


@router.post(
    "/payouts/{claim_ref}/release",
    operation_id="payments-payout-release",
    response_model=None,
    responses=ok(TransferView) | WRITE,
)
def release(
    claim_ref: str, ctx: Context, actor: CurrentActor, key: IdempotencyKey = None
) -> TransferView:
    """Operators: release a held payout; two different staff members release it. Send an
    Idempotency-Key: a retry with it answers the first release (without it, a second release
    by the same person is refused with 409 `second_release_needed`). Errors: 404
    `payout_not_found`; 409 `payout_not_held`, `second_release_needed`."""
    return release_payout(ctx, actor, claim_ref, idempotency_key=key)


@router.get(
    "/plans/{plan_code}/refunds",
    operation_id="payments-refunds-due",
    response_model=None,
    responses=ok(list[RefundView]) | READ,
)
def due_refunds(plan_code: str, ctx: Context, actor: CurrentActor) -> list[RefundView]:
    """Operators and auditors: the refunds the provider has still to pay back (shares of a
    membership ended by an illness in its waiting period), oldest first. Refunds requested since
    the last call are priced from the members' statements and posted to the ledger first."""
    return refunds_due(ctx, actor, plan_code)


@router.post(
    "/refunds/{refund_id}/paid",
    operation_id="payments-refund-paid",
    response_model=None,
    responses=ok(RefundView) | WRITE,
)
def refund_paid(
    refund_id: Int64, ctx: Context, actor: CurrentActor, key: IdempotencyKey = None
) -> RefundView:
    """Operators: the provider has paid this refund back to the payer (posted once). Errors:
    404 `refund_not_found`; 409 `refund_already_paid`."""
    return mark_refund_paid(ctx, actor, refund_id, idempotency_key=key)
