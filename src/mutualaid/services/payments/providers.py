"""Which provider moves a plan's money: the plan file names it, the settings configure it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select

from mutualaid.db.models import PaymentAgreement
from mutualaid.db.queries.plans import current_rules, plan_by_code
from mutualaid.domain.errors import Conflict, NotFound
from mutualaid.domain.plans import PaymentRules
from mutualaid.services.collections.providers import PaymentProvider, SimulatedProvider
from mutualaid.services.context import ServiceContext
from mutualaid.services.payments.alipay import AlipayProvider

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
