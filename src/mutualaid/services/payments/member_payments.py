"""The member's side of the money (issue 17): how they pay, every debit with the provider's
reference, paying an unpaid share now through the plan's provider, and prepaid top-ups.

Use cases: my_payments, pay_share_now, top_up_in_yuan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from mutualaid.db.models import (
    CollectionFailure,
    Membership,
    PaymentAgreement,
    Period,
    Plan,
    ProviderPayment,
)
from mutualaid.db.queries.plans import current_rules
from mutualaid.domain.errors import Conflict, DomainError
from mutualaid.domain.memberships import ACTIVE_STATES
from mutualaid.domain.money import format_yuan, parse_yuan
from mutualaid.domain.plans import FundingModel
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.collections.prepaid import PrepaidView, prepaid_balance, top_up
from mutualaid.services.collections.retries import pay_failed_share
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.debit_authorisations import needs_debit_agreement
from mutualaid.services.payments.providers import provider_of

if TYPE_CHECKING:
    from mutualaid.services.idempotency import UnitOfWork

#: A top-up from the member's page: 1 to 100,000 yuan.
MIN_TOP_UP_FEN = 100
MAX_TOP_UP_FEN = 10_000_000


@dataclass(frozen=True, slots=True)
class AgreementLine:
    provider: str
    #: pending, active, ended
    status: str
    external_no: str
    signed_at: datetime | None


@dataclass(frozen=True, slots=True)
class DebitLine:
    provider: str
    period_ref: str | None
    amount_fen: int
    #: pending, paid, failed
    status: str
    #: The provider's reference (Alipay's trade_no), once it gave one; else what we sent it.
    provider_ref: str | None
    out_ref: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UnpaidShare:
    failure_id: int
    plan_code: str
    period_ref: str
    membership_id: int
    amount_fen: int
    retry_until_on: date


@dataclass(frozen=True, slots=True)
class PlanMethod:
    plan_code: str
    #: simulated, file, alipay
    provider: str
    prepaid: bool
    #: A post-paid Alipay plan: the payer signs a withholding agreement before joining.
    needs_agreement: bool
    balance_fen: int | None


@dataclass(frozen=True, slots=True)
class PaymentsView:
    plans: list[PlanMethod]
    agreements: list[AgreementLine]
    debits: list[DebitLine]
    unpaid: list[UnpaidShare]

    @property
    def agreement_active(self) -> bool:
        return any(a.status == "active" for a in self.agreements)


@dataclass(frozen=True, slots=True)
class PaidShare:
    failure_id: int
    amount_fen: int


def my_payments(ctx: ServiceContext, actor: Actor) -> PaymentsView:
    """The payer's debit method per plan, agreements, every debit and the shares still unpaid."""
    with ctx.reading() as session:
        agreements = [
            AgreementLine(a.provider, a.status, a.external_no, a.signed_at)
            for a in session.scalars(
                select(PaymentAgreement)
                .where(PaymentAgreement.account_id == actor.account_id)
                .order_by(PaymentAgreement.id.desc())
            )
        ]
        debits = [
            DebitLine(
                p.provider,
                ref,
                p.amount_fen,
                p.status,
                p.provider_ref,
                p.out_ref,
                p.created_at,
            )
            for p, ref in session.execute(
                select(ProviderPayment, Period.ref)
                .outerjoin(Period, Period.id == ProviderPayment.period_id)
                .where(
                    ProviderPayment.account_id == actor.account_id,
                    ProviderPayment.kind == "debit",
                )
                .order_by(ProviderPayment.id.desc())
            )
        ]
        unpaid = [
            UnpaidShare(f.id, code, ref, f.membership_id, f.amount_fen, f.retry_until_on)
            for f, ref, code in session.execute(
                select(CollectionFailure, Period.ref, Plan.code)
                .join(Period, Period.id == CollectionFailure.period_id)
                .join(Plan, Plan.id == Period.plan_id)
                .where(
                    CollectionFailure.payer_account_id == actor.account_id,
                    CollectionFailure.status == "retrying",
                )
                .order_by(CollectionFailure.id)
            )
        ]
        plans = []
        for plan in session.scalars(select(Plan).where(Plan.status == "open").order_by(Plan.code)):
            rules = current_rules(session, plan)
            prepaid = rules.funding_model is FundingModel.PREPAID
            plans.append(
                PlanMethod(
                    plan.code,
                    rules.payments.provider if rules.payments else "simulated",
                    prepaid,
                    needs_debit_agreement(rules),
                    None,
                )
            )
        paying = set(
            session.scalars(
                select(Plan.code)
                .join(Membership, Membership.plan_id == Plan.id)
                .where(
                    Membership.payer_account_id == actor.account_id,
                    Membership.state.in_([str(s) for s in ACTIVE_STATES]),
                )
            )
        )
    plans = [
        PlanMethod(
            p.plan_code,
            p.provider,
            p.prepaid,
            p.needs_agreement,
            prepaid_balance(ctx, actor, p.plan_code).balance_fen if p.prepaid else None,
        )
        for p in plans
        if p.plan_code in paying or p.needs_agreement or p.prepaid
    ]
    return PaymentsView(plans, agreements, debits, unpaid)


def _nothing_to_pay() -> Conflict:
    return Conflict("nothing_to_pay", "there is no unpaid share to pay", "failure_id")


def pay_share_now(
    ctx: ServiceContext, actor: Actor, failure_id: int, *, idempotency_key: str | None = None
) -> PaidShare:
    """Pay one of my unpaid shares now through the plan's provider (or from a prepaid balance).
    Paid once: asked again, or for a share that is not mine or not unpaid, `nothing_to_pay`; a
    debit the provider declines is recorded and refused with `payment_declined`."""
    with ctx.reading() as session:
        found = session.execute(
            select(Plan.code)
            .join(Period, Period.plan_id == Plan.id)
            .join(CollectionFailure, CollectionFailure.period_id == Period.id)
            .where(
                CollectionFailure.id == failure_id,
                CollectionFailure.payer_account_id == actor.account_id,
                CollectionFailure.status == "retrying",
            )
        ).first()
    if found is None:
        raise _nothing_to_pay()
    attempt = f"member:{idempotency_key or ctx.clock.now().strftime('%Y%m%dT%H%M%S')}"
    with provider_of(ctx, found[0]) as provider:
        work: UnitOfWork[tuple[bool, int]] = ctx.unit_of_work()
        with work as uow:
            session = uow.session
            failure = session.scalar(
                select(CollectionFailure)
                .where(CollectionFailure.id == failure_id)
                .with_for_update()
            )
            if failure is None or failure.status != "retrying":
                raise _nothing_to_pay()  # paid meanwhile (a second click, the daily retry)
            period = session.get_one(Period, failure.period_id)
            plan = session.get_one(Plan, period.plan_id)
            now = ctx.clock.now()
            paid = pay_failed_share(session, plan, period, failure, provider, now, attempt)
            audit.record(
                session,
                at=now,
                actor_account_id=actor.account_id,
                action="share_paid_now" if paid else "share_payment_declined",
                subject_type="collection_failure",
                subject_id=failure.id,
                amount_fen=failure.amount_fen,
            )
            uow.commit((paid, failure.amount_fen))
    paid, amount = uow.result
    if not paid:
        raise Conflict(
            "payment_declined",
            "the payment did not go through: check your account and try again",
            "failure_id",
        )
    return PaidShare(failure_id, amount)


def top_up_in_yuan(
    ctx: ServiceContext,
    actor: Actor,
    plan_code: str,
    amount_text: str,
    *,
    idempotency_key: str | None = None,
) -> PrepaidView:
    """A top-up typed in yuan on the member's page, 1 to 100,000 yuan (`invalid_top_up`)."""
    bounds = {
        "min_yuan": format_yuan(MIN_TOP_UP_FEN, grouping=True),
        "max_yuan": format_yuan(MAX_TOP_UP_FEN, grouping=True),
    }
    try:
        amount = parse_yuan(amount_text, "amount")
    except DomainError:
        amount = None
    if amount is None or not MIN_TOP_UP_FEN <= amount <= MAX_TOP_UP_FEN:
        raise DomainError(
            "invalid_top_up",
            f"a top-up must be between {bounds['min_yuan']} and {bounds['max_yuan']} yuan",
            "amount",
            details=bounds,
        )
    return top_up(ctx, actor, plan_code, amount, idempotency_key=idempotency_key)
