"""The providers' asynchronous notifications: checked, taken in once, applied in any order.

The signature is checked before any field is read. Each notification is taken in once
(UNIQUE(provider, notify_id)): a replay finds its row and changes nothing. A movement settles
once: a debit reported paid after it was reported failed (or was still pending) is paid late,
once, under a ledger key made of the provider's reference (UNIQUE); "failed" after "paid" changes
nothing (a paid debit is only undone by a refund, which is a movement of its own).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select

from mutualaid.db.models import (
    Claim,
    PaymentAgreement,
    Period,
    Plan,
    ProviderNotification,
    ProviderPayment,
)
from mutualaid.domain.errors import DomainError
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.collections.payouts import finish_period, record_payout
from mutualaid.services.collections.retries import settle_late_debit
from mutualaid.services.context import ServiceContext
from mutualaid.services.payments.alipay import ProviderError, fen_of
from mutualaid.services.payments.providers import alipay_client, known_provider

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from mutualaid.services.idempotency import UnitOfWork

log = structlog.get_logger()

PAID_TRADE = ("TRADE_SUCCESS", "TRADE_FINISHED")
TRANSFER_CHANGED = "alipay.fund.trans.order.changed"


class InvalidSignature(DomainError):
    status = 400


@dataclass(frozen=True, slots=True)
class NotificationOutcome:
    #: applied, duplicate, ignored, unknown_reference, amount_mismatch
    status: str
    out_ref: str | None = None


@dataclass(frozen=True, slots=True)
class _Payout:
    claim_id: int
    amount_fen: int
    sponsored: bool
    reference: str


def take_notification(
    ctx: ServiceContext, provider: str, params: Mapping[str, str]
) -> NotificationOutcome:
    """Check and apply one notification (Alipay's form fields)."""
    known_provider(provider)
    if provider != "alipay":
        raise DomainError(
            "no_notifications", f"the {provider} provider sends no notifications", "provider"
        )
    client = alipay_client(ctx)
    if not client.verify(params) or params.get("app_id") != client.config.app_id:
        # The body is never logged: it may be forged, and it names payers.
        log.warning("payment_notification_refused", provider=provider, reason="invalid_signature")
        raise InvalidSignature(
            "invalid_signature", "the notification is not signed by the provider", "sign"
        )
    notify_type = params.get("msg_method") or params.get("notify_type", "")
    notify_id = params.get("notify_id") or hashlib.sha256(params["sign"].encode()).hexdigest()
    work: UnitOfWork[tuple[NotificationOutcome, _Payout | None]] = ctx.unit_of_work()
    with work as uow:
        session = uow.session
        now = ctx.clock.now()
        seen = session.scalar(
            select(ProviderNotification.id).where(
                ProviderNotification.provider == provider,
                ProviderNotification.notify_id == notify_id,
            )
        )
        if seen is not None:
            return NotificationOutcome("duplicate")
        payout: _Payout | None = None
        if notify_type == "trade_status_sync":
            outcome = _trade(session, params, now)
        elif notify_type == TRANSFER_CHANGED:
            outcome, payout = _transfer(session, _biz(params), now)
        elif notify_type in ("dut_user_sign", "dut_user_unsign"):
            outcome = _agreement(session, params, now)
        else:
            outcome = NotificationOutcome("ignored")
        session.add(
            ProviderNotification(
                provider=provider,
                notify_id=notify_id[:128],
                notify_type=notify_type[:60],
                out_ref=outcome.out_ref,
                status=outcome.status,
                received_at=now,
            )
        )
        uow.commit((outcome, payout))
    outcome, payout = uow.result
    if payout is not None:
        paid = record_payout(
            ctx,
            SYSTEM_ACTOR,
            payout.claim_id,
            payout.amount_fen,
            payout.sponsored,
            payout.reference,
        )
        with ctx.reading() as session:
            period_id = session.get_one(Claim, payout.claim_id).period_id
        if period_id is not None:
            finish_period(ctx, SYSTEM_ACTOR, period_id, [paid] if paid else [])
    log.info("payment_notification", provider=provider, kind=notify_type, status=outcome.status)
    return outcome


def _biz(params: Mapping[str, str]) -> dict[str, Any]:
    try:
        biz = json.loads(params.get("biz_content", ""))
    except json.JSONDecodeError:
        raise DomainError(
            "invalid_notification", "biz_content is not JSON", "biz_content"
        ) from None
    if not isinstance(biz, dict):
        raise DomainError("invalid_notification", "biz_content is not an object", "biz_content")
    return biz


def _payment(session: Session, kind: str, out_ref: str) -> ProviderPayment | None:
    return session.scalar(
        select(ProviderPayment)
        .where(
            ProviderPayment.provider == "alipay",
            ProviderPayment.kind == kind,
            ProviderPayment.out_ref == out_ref,
        )
        .with_for_update()
    )


def _amount(text: str) -> int | None:
    try:
        return fen_of(text)
    except ProviderError:
        return None


def _trade(session: Session, params: Mapping[str, str], now: Any) -> NotificationOutcome:
    out_ref = params.get("out_trade_no", "")
    payment = _payment(session, "debit", out_ref)
    if payment is None:
        return NotificationOutcome("unknown_reference", out_ref[:64] or None)
    if _amount(params.get("total_amount", "")) != payment.amount_fen:
        return NotificationOutcome("amount_mismatch", out_ref)
    status = params.get("trade_status", "")
    if payment.status == "paid":
        return NotificationOutcome("applied", out_ref)  # settled before: nothing moves again
    if status in PAID_TRADE:
        trade_no = params.get("trade_no", "")
        payment.status = "paid"
        payment.provider_ref = payment.provider_ref or trade_no
        payment.settled_at = now
        assert payment.period_id is not None
        period = session.get_one(Period, payment.period_id)
        plan = session.get_one(Plan, period.plan_id)
        settle_late_debit(
            session,
            plan,
            period,
            payment.account_id,
            payment.membership_id,
            payment.amount_fen,
            f"alipay:trade:{payment.provider_ref}",
            f"debit {payment.key} paid late, alipay trade {payment.provider_ref}",
            now,
        )
    elif status == "TRADE_CLOSED":
        payment.status = "failed"
    return NotificationOutcome("applied", out_ref)


def _transfer(
    session: Session, biz: Mapping[str, Any], now: Any
) -> tuple[NotificationOutcome, _Payout | None]:
    out_ref = str(biz.get("out_biz_no", ""))
    payment = _payment(session, "transfer", out_ref)
    if payment is None or payment.claim_id is None:
        return NotificationOutcome("unknown_reference", out_ref[:64] or None), None
    if _amount(str(biz.get("trans_amount", ""))) != payment.amount_fen:
        return NotificationOutcome("amount_mismatch", out_ref), None
    if payment.status == "paid":
        return NotificationOutcome("applied", out_ref), None
    status = str(biz.get("status", ""))
    if status == "SUCCESS":
        payment.status = "paid"
        payment.provider_ref = payment.provider_ref or str(biz.get("order_id", ""))
        payment.settled_at = now
        claim = session.get_one(Claim, payment.claim_id)
        reference = f"alipay transfer {payment.provider_ref}"
        return NotificationOutcome("applied", out_ref), _Payout(
            claim.id, payment.amount_fen, claim.sponsored, reference
        )
    if status in ("FAIL", "CLOSED"):
        payment.status = "failed"
    return NotificationOutcome("applied", out_ref), None


def _agreement(session: Session, params: Mapping[str, str], now: Any) -> NotificationOutcome:
    external_no = params.get("external_agreement_no", "")
    row = session.scalar(
        select(PaymentAgreement)
        .where(PaymentAgreement.provider == "alipay", PaymentAgreement.external_no == external_no)
        .with_for_update()
    )
    if row is None:
        return NotificationOutcome("unknown_reference", external_no[:64] or None)
    if params.get("status") == "NORMAL" and row.status == "pending":
        row.status = "active"
        row.agreement_no = params.get("agreement_no") or None
        row.provider_user_id = params.get("alipay_user_id") or None
        row.signed_at = now
    elif params.get("status") == "UNSIGN":
        row.status = "ended"
    return NotificationOutcome("applied", external_no)
