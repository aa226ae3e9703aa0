"""Payouts through the provider: each approved case transferred once, a large one only after two
different staff members released it; the provider's notification settles it (callbacks.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Claim,
    PaymentAgreement,
    PayoutRelease,
    Plan,
    ProviderPayment,
)
from mutualaid.db.queries.plans import current_rules, plan_by_code
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.apportionment import PeriodState, reached
from mutualaid.domain.claims import ClaimState
from mutualaid.domain.errors import Conflict, NotFound
from mutualaid.domain.plans import FOUR_EYES, PaymentRules
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.collections.payouts import payout_amounts
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import Once
from mutualaid.services.payments.alipay import TransferResult, out_reference
from mutualaid.services.payments.providers import alipay_client, payment_rules
from mutualaid.services.periods.views import find_period

if TYPE_CHECKING:
    from mutualaid.services.idempotency import UnitOfWork

RELEASES_NEEDED = FOUR_EYES


class Transferring(Protocol):
    """A provider that pays a payee (Alipay; the simulated one for the demo and tests).
    `transfer` is idempotent by key: asked again it answers the first transfer."""

    name: str

    def transfer(
        self, payee_user_id: str, amount_fen: int, idempotency_key: str, title: str
    ) -> TransferResult: ...


def payee_of(session: Session, provider: str, account_id: int) -> str | None:
    """Who a provider pays for this account: the user of their active agreement (the simulated
    provider pays the account itself); None when they have none."""
    if provider == "simulated":
        return f"account:{account_id}"
    return session.scalar(
        select(PaymentAgreement.provider_user_id).where(
            PaymentAgreement.provider == provider,
            PaymentAgreement.account_id == account_id,
            PaymentAgreement.status == "active",
        )
    )


@dataclass(frozen=True, slots=True)
class TransferView:
    claim_ref: str
    amount_fen: int
    #: held (waiting for releases), ready, pending (sent; the notification settles it), paid,
    #: failed, no_payee (the claimant has no active agreement to pay to)
    status: str
    releases: int = 0
    reference: str | None = None


def send_payouts(
    ctx: ServiceContext, actor: Actor, plan_code: str, publicity_on: date, client: Transferring
) -> list[TransferView]:
    """Transfer each approved case of a collected period through Alipay, once (out_biz_no from
    ``payout:<claim>``). A case above the plan's `four_eyes_above_fen` is held until released."""
    require_role(actor.role, Role.OPERATOR)
    threshold = payment_rules(ctx, plan_code).four_eyes_above_fen
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        period = find_period(session, plan, publicity_on)
        if not reached(PeriodState(period.state), PeriodState.COLLECTED):
            raise Conflict(
                "period_not_collected",
                f"collect period {period.ref} first",
                details={"period": period.ref},
            )
        cases = payout_amounts(session, period)
        period_id = period.id
    views = []
    for claim_id, ref, amount, _ in cases:
        views.append(send_one(ctx, actor, client, period_id, claim_id, ref, amount, threshold))
    return views


def send_one(
    ctx: ServiceContext,
    actor: Actor,
    client: Transferring,
    period_id: int,
    claim_id: int,
    ref: str,
    amount: int,
    threshold: int,
    *,
    key: str | None = None,
) -> TransferView:
    """Send one payout under `key` (default ``payout:<claim>``; a resend has its own), creating
    its row first: held above `threshold`, else ready."""
    work: UnitOfWork[TransferView] = ctx.unit_of_work()
    with work as uow:
        session = uow.session
        claim = session.get_one(Claim, claim_id, with_for_update=True)
        key = key or f"payout:{ref}"
        row = session.scalar(
            select(ProviderPayment).where(
                ProviderPayment.provider == client.name, ProviderPayment.key == key
            )
        )
        now = ctx.clock.now()
        if row is None:
            if claim.state != ClaimState.APPROVED:
                return TransferView(ref, amount, str(claim.state))
            row = ProviderPayment(
                provider=client.name,
                kind="transfer",
                key=key,
                out_ref=out_reference(key),
                amount_fen=amount,
                status="held" if amount > threshold else "ready",
                account_id=claim.claimant_account_id,
                period_id=period_id,
                claim_id=claim.id,
                created_at=now,
            )
            session.add(row)
            session.flush()
        if row.status == "ready":
            payee = payee_of(session, client.name, claim.claimant_account_id)
            if payee is None:
                uow.commit(TransferView(ref, amount, "no_payee"))
                return uow.result
            result = client.transfer(payee, amount, key, f"mutual aid payout {ref}")
            row.status = "pending" if result.accepted else "failed"
            row.provider_ref = result.reference
            row.sent_at = now
            audit.record(
                session,
                at=now,
                actor_account_id=actor.recorded_id,
                action="payout_transfer_sent",
                subject_type="claim",
                subject_id=claim.id,
                amount_fen=amount,
                accepted=result.accepted,
                key=key,
            )
        uow.commit(transfer_view(session, row, ref))
    return uow.result


def transfer_view(session: Session, row: ProviderPayment, ref: str) -> TransferView:
    releases = (
        session.scalar(
            select(func.count())
            .select_from(PayoutRelease)
            .where(PayoutRelease.payment_id == row.id)
        )
        or 0
    )
    return TransferView(ref, row.amount_fen, row.status, releases, row.provider_ref)


def _releases_needed(session: Session, row: ProviderPayment) -> int:
    """The plan's four-eyes rule (domain.plans.PaymentRules.releases_needed) for this payout;
    one of no known claim was held for its amount, so four eyes."""
    if row.claim_id is None:
        return FOUR_EYES
    claim = session.get_one(Claim, row.claim_id)
    rules = current_rules(session, session.get_one(Plan, claim.plan_id))
    return (rules.payments or PaymentRules()).releases_needed(row.amount_fen)


def release_payout(
    ctx: ServiceContext, actor: Actor, claim_ref: str, *, idempotency_key: str | None = None
) -> TransferView:
    """One staff member's release of a held payout; the last one the plan's four-eyes rule needs
    (the second, by someone else, above its amount) makes it ready (sent by the next
    `send_payouts`, or from the payout desk). A retry under the same key answers the first release."""
    require_role(actor.role, Role.OPERATOR)
    once = Once(actor.account_id, idempotency_key, "release_payout:" + claim_ref, {}, TransferView)
    work: UnitOfWork[TransferView] = ctx.unit_of_work(once)
    with work as uow:
        session = uow.session
        row = session.scalar(
            select(ProviderPayment)
            .where(ProviderPayment.kind == "transfer", ProviderPayment.key == f"payout:{claim_ref}")
            .with_for_update()
        )
        if row is None:
            raise NotFound("payout_not_found", f"no payout of {claim_ref} is waiting", "claim")
        if row.status != "held":
            raise Conflict("payout_not_held", f"the payout of {claim_ref} is {row.status}", "claim")
        mine = session.scalar(
            select(PayoutRelease.id).where(
                PayoutRelease.payment_id == row.id, PayoutRelease.account_id == actor.account_id
            )
        )
        if mine is not None or not actor.recorded_id:
            raise Conflict(
                "second_release_needed",
                "another staff member must release this payout",
                "claim",
            )
        now = ctx.clock.now()
        session.add(PayoutRelease(payment_id=row.id, account_id=actor.account_id, released_at=now))
        session.flush()
        view = transfer_view(session, row, claim_ref)
        if view.releases >= _releases_needed(session, row):
            row.status = "ready"
            view = dataclasses.replace(view, status=row.status)
        audit.record(
            session,
            at=now,
            actor_account_id=actor.recorded_id,
            action="payout_released",
            subject_type="provider_payment",
            subject_id=row.id,
            claim=claim_ref,
            releases=view.releases,
        )
        uow.commit(view)
    return uow.result


class SimulatedTransfers:
    """Payouts for the demo and tests: each accepted (the notification never comes, so a sent
    transfer stays pending) unless its payee is listed in `failing`; idempotent by key."""

    name = "simulated"

    def __init__(self, *, failing: frozenset[str] = frozenset()) -> None:
        self.failing = failing
        self.sent: dict[str, TransferResult] = {}

    def transfer(
        self, payee_user_id: str, amount_fen: int, idempotency_key: str, title: str
    ) -> TransferResult:
        if idempotency_key not in self.sent:
            out_ref = out_reference(idempotency_key)
            accepted = payee_user_id not in self.failing
            self.sent[idempotency_key] = TransferResult(
                out_ref, "SIM" + out_ref[2:] if accepted else None, accepted
            )
        return self.sent[idempotency_key]


@contextmanager
def transfer_client(ctx: ServiceContext, plan_code: str) -> Iterator[Transferring]:
    """What pays the plan's payouts: Alipay or the simulated provider (a `file` plan cannot)."""
    name = payment_rules(ctx, plan_code).provider
    if name == "file":
        raise Conflict(
            "provider_not_configured",
            "the plan's provider (file) makes no transfers",
            "provider",
            details={"variant": "no_transfers"},
        )
    if name == "simulated":
        yield SimulatedTransfers()
        return
    with alipay_client(ctx) as client:
        yield client
