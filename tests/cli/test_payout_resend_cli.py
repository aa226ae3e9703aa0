"""`mutualaid payments resend`: a failed payout transfer sent again through the plan's provider,
refused with `transfer_not_failed` when its latest transfer did not fail."""

from __future__ import annotations

from sqlalchemy import select
from tests.cli.cli import assert_clean_failure, mutualaid, said
from tests.factories import account, collected_payout, publish_demo_plans

from mutualaid.clock import FixedClock
from mutualaid.db.models import Claim, ProviderPayment
from mutualaid.domain.accounts import Role
from mutualaid.services.context import ServiceContext
from mutualaid.services.payments.payout_desk import release_for_payment, send_transfer
from mutualaid.services.payments.transfers import SimulatedTransfers


def test_a_failed_transfer_is_resent_once_and_then_refused(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    publish_demo_plans(ctx)
    ref = collected_payout(ctx, clock)
    operator = account(ctx, Role.OPERATOR)
    release_for_payment(ctx, operator, ref)
    with ctx.reading() as session:
        claimant = session.scalar(select(Claim.claimant_account_id).where(Claim.ref == ref))
    failing = SimulatedTransfers(failing=frozenset({f"account:{claimant}"}))
    assert send_transfer(ctx, operator, ref, failing).status == "failed"

    result = mutualaid("payments", "resend", ref)
    assert result.exit_code == 0, result.output
    assert f"{ref}: ¥10.00 paid" in said(result.output)  # the simulated provider settles at once
    with ctx.reading() as session:
        statuses = session.scalars(
            select(ProviderPayment.status)
            .where(ProviderPayment.kind == "transfer")
            .order_by(ProviderPayment.id)
        ).all()
    assert statuses == ["failed", "paid"]

    again = mutualaid("payments", "resend", ref)
    assert again.exit_code == 2
    assert_clean_failure(again)
    assert "transfer_not_failed" in again.output
