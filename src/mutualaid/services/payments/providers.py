"""Which provider moves a plan's money: the plan file names it, the settings configure it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import select

from mutualaid.db.models import PaymentAgreement
from mutualaid.db.queries.plans import current_rules, plan_by_code
from mutualaid.domain.errors import Conflict, NotFound
from mutualaid.domain.plans import PaymentRules
from mutualaid.services.collections.providers import PaymentProvider, SimulatedProvider
from mutualaid.services.context import ServiceContext
from mutualaid.services.payments.alipay import AlipayProvider, TransferResult, out_reference

if TYPE_CHECKING:
    from mutualaid.services.payments.transfers import Transferring

PROVIDERS = ("simulated", "file", "alipay")


def payment_rules(ctx: ServiceContext, plan_code: str) -> PaymentRules:
    with ctx.reading() as session:
        return current_rules(session, plan_by_code(session, plan_code)).payments or PaymentRules()


def alipay_client(ctx: ServiceContext) -> AlipayProvider:
    """The Alipay adapter of this site; debits look up the payer's active agreement."""
    if ctx.alipay is None:
        raise Conflict(
            "provider_not_configured",
            "Alipay is not configured (MUTUALAID_ALIPAY_APP_ID and the key files)",
            "provider",
        )

    def agreement_of(payer_account_id: int) -> str | None:
        with ctx.reading() as session:
            return session.scalar(
                select(PaymentAgreement.agreement_no).where(
                    PaymentAgreement.provider == "alipay",
                    PaymentAgreement.account_id == payer_account_id,
                    PaymentAgreement.status == "active",
                )
            )

    return AlipayProvider(ctx.alipay, agreement_of, now=ctx.clock.now)


def plan_provider(
    ctx: ServiceContext, plan_code: str, *, simulated_failure_bp: int = 0
) -> PaymentProvider | None:
    """The plan's provider; None for `file` (collected through the collection file)."""
    name = payment_rules(ctx, plan_code).provider
    if name == "alipay":
        return alipay_client(ctx)
    if name == "file":
        return None
    return SimulatedProvider(failure_bp=simulated_failure_bp)


def known_provider(name: str) -> str:
    if name not in PROVIDERS:
        raise NotFound("unknown_provider", f"there is no payment provider {name!r}", "provider")
    return name


@contextmanager
def provider_of(
    ctx: ServiceContext, plan_code: str, *, simulated_failure_bp: int = 0
) -> Iterator[PaymentProvider | None]:
    """`plan_provider`, its connections closed at the end of the block."""
    provider = plan_provider(ctx, plan_code, simulated_failure_bp=simulated_failure_bp)
    try:
        yield provider
    finally:
        if isinstance(provider, AlipayProvider):
            provider.close()


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
