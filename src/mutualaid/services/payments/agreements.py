"""Debit agreements: a payer authorises the plan's provider to debit their shares."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from mutualaid.db.models import PaymentAgreement
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.payments.providers import alipay_client

if TYPE_CHECKING:
    from mutualaid.services.idempotency import UnitOfWork


@dataclass(frozen=True, slots=True)
class SignPage:
    external_no: str
    #: Where the payer signs (Alipay's agreement page); Alipay then notifies the agreement.
    url: str
    status: str


def start_agreement(ctx: ServiceContext, actor: Actor, return_url: str = "") -> SignPage:
    """The payer's Alipay withholding agreement: the page to sign it (the pending one again, if
    signing was started before); active once Alipay's `dut_user_sign` notification arrives."""
    client = alipay_client(ctx)
    work: UnitOfWork[tuple[str, str]] = ctx.unit_of_work()
    with work as uow:
        session = uow.session
        row = session.scalar(
            select(PaymentAgreement)
            .where(
                PaymentAgreement.provider == "alipay",
                PaymentAgreement.account_id == actor.account_id,
                PaymentAgreement.status.in_(("pending", "active")),
            )
            .order_by(PaymentAgreement.id.desc())
        )
        if row is None:
            now = ctx.clock.now()
            row = PaymentAgreement(
                provider="alipay",
                account_id=actor.account_id,
                external_no="MAAG" + secrets.token_hex(14),
                status="pending",
                created_at=now,
            )
            session.add(row)
            session.flush()
            audit.record(
                session,
                at=now,
                actor_account_id=actor.recorded_id,
                action="payment_agreement_started",
                subject_type="payment_agreement",
                subject_id=row.id,
                provider="alipay",
            )
        uow.commit((row.external_no, row.status))
    external_no, status = uow.result
    url = client.agreement_sign_url(external_no, return_url) if status == "pending" else ""
    return SignPage(external_no, url, status)
