"""Collections and payouts through the Alipay adapter against a local gateway over real HTTP:
the app is served too, so the gateway's signed notifications reach its notify endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select
from tests.alipay_gateway import (
    APP_ID,
    Gateway,
    alipay_gateway,
    new_key,
    site_config,
)
from tests.factories import (
    LOCK_MARCH_7,
    MAIN_PLAN,
    MARCH_7,
    account,
    approved_claim,
    close_on,
    join_at,
    publish_demo_plans,
    use_rules,
)
from tests.live_servers import served
from tests.refusals import refused

from mutualaid.api.app import create_app
from mutualaid.clock import FixedClock
from mutualaid.db.models import (
    Claim,
    CollectionFailure,
    LedgerTransaction,
    Membership,
    Period,
    ProviderNotification,
    ProviderPayment,
)
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import ClaimState
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR, Actor
from mutualaid.services.collections.debits import collect_period
from mutualaid.services.collections.retries import retry_failed_payments
from mutualaid.services.context import ServiceContext
from mutualaid.services.payments.agreements import start_agreement
from mutualaid.services.payments.alipay import AlipayProvider, out_reference
from mutualaid.services.payments.providers import alipay_client, plan_provider, provider_of
from mutualaid.services.payments.reconciliation import reconcile
from mutualaid.services.payments.transfers import release_payout, send_payouts
from mutualaid.services.scheduling.jobs import JobEnvironment
from mutualaid.services.scheduling.worker import tick

DEBIT_DAY = datetime(2026, 3, 14, 2, tzinfo=UTC)  # 10:00 Beijing
JOINED = datetime(2025, 6, 1, tzinfo=UTC)
PAYMENTS = '\n[payments]\nprovider = "alipay"\nfour_eyes_above_fen = 500\n'


@pytest.fixture
def gateway(ctx: ServiceContext) -> Iterator[Gateway]:
    with alipay_gateway(new_key()) as gateway, served(create_app(ctx), "app") as app:
        ctx.alipay = site_config(gateway, app.url)
        yield gateway


def signed_up(ctx: ServiceContext, gateway: Gateway, payer: Actor, user_id: str) -> str:
    """The payer opens the sign page and signs; Alipay notifies the app. Their agreement_no."""
    page = start_agreement(ctx, payer)
    assert httpx.get(page.url).status_code == 200  # the gateway checked the page's signature
    answer = gateway.sign_agreement(page.external_no, user_id)
    assert answer.text == "success"
    return next(no for no, user in gateway.agreements.items() if user == user_id)


def count(ctx: ServiceContext, model: type) -> int:
    with ctx.reading() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def payment(ctx: ServiceContext, key: str) -> ProviderPayment:
    with ctx.reading() as session:
        row = session.scalar(select(ProviderPayment).where(ProviderPayment.key == key))
        assert row is not None
        session.expunge(row)
        return row


def test_debits_callbacks_payout_and_reconciliation_end_to_end(
    ctx: ServiceContext, clock: FixedClock, gateway: Gateway, request: pytest.FixtureRequest
) -> None:
    publish_demo_plans(ctx)
    use_rules(ctx, tables=PAYMENTS)
    payers = [account(ctx) for _ in range(3)]  # a post-paid Alipay plan: sign, then join
    agreements = [
        signed_up(ctx, gateway, holder, f"20880000000000{n}") for n, holder in enumerate(payers)
    ]
    people = [join_at(ctx, clock, JOINED, holder) for holder in payers]
    gateway.declined.add(agreements[1])
    gateway.waiting.add(agreements[2])
    ref = approved_claim(ctx, people[0][1].id, 1000, LOCK_MARCH_7 - timedelta(days=1))
    close_on(ctx, clock, MARCH_7)
    clock.set(DEBIT_DAY)
    provider = plan_provider(ctx, MAIN_PLAN)
    assert isinstance(provider, AlipayProvider)
    with provider:
        run = collect_period(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7, provider)
    share = run.collected_fen
    assert (run.payers_asked, run.failed_fen) == (3, 2 * share)
    with ctx.reading() as session:
        period_ref = session.scalar(select(Period.ref))
    payers = [holder.account_id for holder, _ in people]
    paid, declined, waiting = (payment(ctx, f"{period_ref}:{p}") for p in payers)
    assert (paid.status, declined.status, waiting.status) == ("paid", "failed", "pending")
    assert paid.provider_ref and paid.provider_ref.startswith("2026031422001")
    assert paid.out_ref == out_reference(f"{period_ref}:{payers[0]}")
    assert gateway.refused_requests == 0

    # The daily retry asks the declined payer again, never the one whose debit is still pending.
    with provider_of(ctx, MAIN_PLAN) as again:
        retried = retry_failed_payments(ctx, SYSTEM_ACTOR, MAIN_PLAN, again)
    assert (retried.paid_late, retried.still_failing) == (0, 2)
    assert len(gateway.pending) == 1
    with ctx.reading() as session:
        asked = session.scalars(
            select(ProviderPayment.account_id).where(ProviderPayment.key.contains(":retry:"))
        ).all()
        assert asked == [payers[1]]

    # The waiting debit: "closed" first, then "paid" (out of order), then "paid" replayed.
    transactions = count(ctx, LedgerTransaction)
    assert gateway.settle_pending(waiting.out_ref, "TRADE_CLOSED", "n-1").text == "success"
    assert payment(ctx, waiting.key).status == "failed"
    assert gateway.settle_pending(waiting.out_ref, "TRADE_SUCCESS", "n-2").text == "success"
    settled = payment(ctx, waiting.key)
    assert (settled.status, settled.provider_ref) == ("paid", waiting.provider_ref)
    assert count(ctx, LedgerTransaction) == transactions + 1
    for notify_id in ("n-2", "n-3"):  # the same notification again, and a second copy
        assert gateway.settle_pending(waiting.out_ref, "TRADE_SUCCESS", notify_id).text == "success"
    assert count(ctx, LedgerTransaction) == transactions + 1
    assert count(ctx, ProviderNotification) == 3 + 3  # three agreements, three trade notices
    with ctx.reading() as session:
        late = session.scalar(
            select(LedgerTransaction).where(
                LedgerTransaction.key == f"alipay:trade:{waiting.provider_ref}"
            )
        )
        assert late is not None and waiting.provider_ref in late.memo
        failures = dict(
            session.execute(
                select(CollectionFailure.payer_account_id, CollectionFailure.status)
            ).all()
        )
        assert failures == {payers[1]: "retrying", payers[2]: "paid_late"}
        states = [session.get_one(Membership, m.id).state for _, m in people]
        assert states[1] == "suspended" and states[2] != "suspended"

    # The payout: above the four-eyes amount, so held until two different operators release it.
    client = alipay_client(ctx)
    request.addfinalizer(client.close)
    [held] = send_payouts(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7, client)
    assert (held.claim_ref, held.status, held.releases) == (ref, "held", 0)
    first, second = account(ctx, Role.OPERATOR), account(ctx, Role.OPERATOR)
    assert release_payout(ctx, first, ref).status == "held"
    with refused("second_release_needed"):
        release_payout(ctx, first, ref)
    assert release_payout(ctx, second, ref).status == "ready"
    [sent] = send_payouts(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7, client)
    assert sent.status == "pending" and sent.reference
    with ctx.reading() as session:
        assert session.scalar(select(Claim.state)) == ClaimState.APPROVED  # not before the notice
    transfer = gateway.movements[out_reference(f"payout:{ref}")]
    params = gateway.transfer_params(transfer, "SUCCESS", "t-1")
    for _ in range(2):
        assert gateway.post(transfer.notify_url, params).text == "success"
    with ctx.reading() as session:
        assert session.scalar(select(Claim.state)) == ClaimState.PAID
        assert session.scalar(select(Period.state)) == "paid"
        payouts = session.scalars(
            select(LedgerTransaction.memo).where(LedgerTransaction.kind == "payout")
        ).all()
        assert len(payouts) == 1 and transfer.reference in payouts[0]
    assert payment(ctx, f"payout:{ref}").status == "paid"

    # Reconciliation: the statement agrees, then one planted difference is the only one listed.
    assert (
        reconcile(
            ctx, SYSTEM_ACTOR, "alipay", date(2026, 3, 14), client.statement(date(2026, 3, 14))
        )
        == []
    )
    gateway.statement_amounts[paid.out_ref] = paid.amount_fen - 1
    [difference] = reconcile(
        ctx, SYSTEM_ACTOR, "alipay", date(2026, 3, 14), client.statement(date(2026, 3, 14))
    )
    assert (difference.kind, difference.out_ref, difference.ours_fen, difference.theirs_fen) == (
        "amount_mismatch",
        paid.out_ref,
        paid.amount_fen,
        paid.amount_fen - 1,
    )


def test_a_notification_with_a_bad_signature_is_refused_and_changes_nothing(
    ctx: ServiceContext, clock: FixedClock, gateway: Gateway
) -> None:
    publish_demo_plans(ctx)
    holder = account(ctx)
    page = start_agreement(ctx, holder)
    httpx.get(page.url)
    forged = gateway.post(
        gateway.sign_pages[page.external_no],
        {
            "notify_type": "dut_user_sign",
            "notify_id": "forged-1",
            "app_id": APP_ID,
            "external_agreement_no": page.external_no,
            "agreement_no": "20265314000999999999",
            "alipay_user_id": "2088000000000666",
            "status": "NORMAL",
        },
        key=new_key(),
    )
    assert forged.status_code == 400
    assert forged.json()["error"]["code"] == "invalid_signature"
    assert count(ctx, ProviderNotification) == 0
    assert start_agreement(ctx, holder).status == "pending"


def test_the_worker_collects_a_plan_that_names_alipay_through_alipay(
    ctx: ServiceContext, clock: FixedClock, gateway: Gateway
) -> None:
    publish_demo_plans(ctx)
    use_rules(ctx, tables=PAYMENTS)
    payers = [account(ctx) for _ in range(2)]
    for n, holder in enumerate(payers):
        signed_up(ctx, gateway, holder, f"20881111111111{n}")
    people = [join_at(ctx, clock, JOINED, holder) for holder in payers]
    approved_claim(ctx, people[0][1].id, 1000, LOCK_MARCH_7 - timedelta(days=1))
    env = JobEnvironment(provider=None)  # no simulated provider: only the plan's own
    clock.set(LOCK_MARCH_7)
    tick(ctx, env, "w")
    clock.set(datetime(2026, 3, 13, 16, 0, tzinfo=UTC))
    runs = [r for r in tick(ctx, env, "w") if r.job == "collection" and r.scope == MAIN_PLAN]
    assert [r.state for r in runs] == ["succeeded"], runs
    with ctx.reading() as session:
        assert session.scalar(
            select(Period.state).where(Period.ref == f"{MAIN_PLAN}/{MARCH_7}")
        ) == ("collected")
        statuses = session.scalars(select(ProviderPayment.status)).all()
    assert statuses == ["paid", "paid"]
    assert len(gateway.movements) == 2 and gateway.refused_requests == 0
