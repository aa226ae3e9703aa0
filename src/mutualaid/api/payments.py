"""Payments: the providers' notifications, debit agreements, payouts through a provider and
their four-eyes release."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from mutualaid.api.dependencies import Context, CurrentActor
from mutualaid.services.payments.agreements import SignPage, start_agreement
from mutualaid.services.payments.callbacks import take_notification
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
    response_class=PlainTextResponse,
    responses={400: {"description": "invalid_signature: not signed by the provider"}},
)
async def notify(provider: str, request: Request, ctx: Context) -> PlainTextResponse:
    """The provider's asynchronous notification (form fields, signed). Answers `success` once
    it is taken in (Alipay sends it again until then); a replay changes nothing."""
    form = await request.form()
    params = {key: value for key, value in form.items() if isinstance(value, str)}
    take_notification(ctx, provider, params)
    return PlainTextResponse("success")


@router.post("/alipay/agreements", operation_id="payments-agreement-start", response_model=None)
def agreement(body: AgreementRequest, ctx: Context, actor: CurrentActor) -> SignPage:
    """A payer starts (or resumes) their Alipay withholding agreement: the page to sign it."""
    return start_agreement(ctx, actor, body.return_url)


@router.post(
    "/plans/{plan_code}/periods/{publicity_on}/transfers",
    operation_id="payments-transfers-send",
    response_model=None,
)
def transfers(
    plan_code: str, publicity_on: date, ctx: Context, actor: CurrentActor
) -> list[TransferView]:
    """Operators: transfer the period's approved payouts through Alipay (each once); a payout
    above the plan's four-eyes amount waits for two releases."""
    with alipay_client(ctx) as client:
        return send_payouts(ctx, actor, plan_code, publicity_on, client)


@router.post(
    "/payouts/{claim_ref}/release", operation_id="payments-payout-release", response_model=None
)
def release(claim_ref: str, ctx: Context, actor: CurrentActor) -> TransferView:
    """Operators: release a held payout; two different staff members release it."""
    return release_payout(ctx, actor, claim_ref)
