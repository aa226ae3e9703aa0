"""The payout desk: release (two operators above the four-eyes amount), send through the plan's
provider, resend a failed transfer; each refusal by its code; the claimant's transfer lines."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from tests.factories import (
    MAIN_PLAN,
    account,
    collected_payout,
    collected_payouts,
    publish_demo_plans,
    use_rules,
)
from tests.query_counter import QueryCounter
from tests.refusals import refused

from mutualaid.clock import FixedClock
from mutualaid.db.models import Claim, LedgerTransaction, Period
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import ClaimState
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.payments.payout_desk import (
    claim_transfers,
    payout_desk,
    release_for_payment,
    resend_transfer,
    send_transfer,
)
from mutualaid.services.payments.transfers import SimulatedTransfers


@pytest.fixture(autouse=True)
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


FOUR_EYES = '\n[payments]\nprovider = "simulated"\nfour_eyes_above_fen = 500\n'


def test_a_small_payout_is_released_by_one_operator_and_sent_once(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    ref = collected_payout(ctx, clock)
    operator = account(ctx, Role.OPERATOR)
    [line] = payout_desk(ctx, operator, MAIN_PLAN)
    assert (line.claim_ref, line.status, line.releases_needed) == (ref, "to_release", 1)
    with refused("payout_not_ready"):
        send_transfer(ctx, operator, ref, SimulatedTransfers())
    assert release_for_payment(ctx, operator, ref).status == "ready"
    client = SimulatedTransfers()
    sent = send_transfer(ctx, operator, ref, client)
    assert sent.status == "paid" and sent.reference  # the simulated provider settles at once
    assert send_transfer(ctx, operator, ref, client).status == "paid"  # nothing sent again
    assert len(client.sent) == 1
    [line] = payout_desk(ctx, operator, MAIN_PLAN)
    assert (line.status, line.attempts) == ("paid", 1) and line.settled_at is not None
    with ctx.reading() as session:
        assert session.scalar(select(Claim.state).where(Claim.ref == ref)) == ClaimState.PAID
        assert session.scalar(select(Period.state)) == "paid"
        memo = session.scalar(
            select(LedgerTransaction.memo).where(LedgerTransaction.kind == "payout")
        )
        assert memo is not None and sent.reference in memo


def test_a_large_payout_needs_a_second_different_operator(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    use_rules(ctx, tables=FOUR_EYES)
    ref = collected_payout(ctx, clock)
    first, second = account(ctx, Role.OPERATOR), account(ctx, Role.OPERATOR)
    held = release_for_payment(ctx, first, ref)
    assert (held.status, held.releases) == ("held", 1)
    with refused("second_release_needed"):
        release_for_payment(ctx, first, ref)
    with refused("payout_not_ready"):
        send_transfer(ctx, first, ref, SimulatedTransfers())
    assert release_for_payment(ctx, second, ref).status == "ready"
    assert send_transfer(ctx, second, ref, SimulatedTransfers()).status == "paid"


def test_a_failed_transfer_is_resent_under_a_new_key_and_only_when_failed(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    ref = collected_payout(ctx, clock)
    operator = account(ctx, Role.OPERATOR)
    release_for_payment(ctx, operator, ref)
    with refused("transfer_not_failed"):
        resend_transfer(ctx, operator, ref, SimulatedTransfers())
    [line] = payout_desk(ctx, operator, MAIN_PLAN)
    failing = SimulatedTransfers(failing=frozenset({f"account:{_claimant(ctx, ref).account_id}"}))
    assert send_transfer(ctx, operator, ref, failing).status == "failed"
    again = resend_transfer(ctx, operator, ref, SimulatedTransfers())
    assert again.status == "paid"
    with refused("transfer_not_failed"):
        resend_transfer(ctx, operator, ref, SimulatedTransfers())
    [line] = payout_desk(ctx, operator, MAIN_PLAN)
    assert (line.status, line.attempts) == ("paid", 2)
    lines = claim_transfers(ctx, _claimant(ctx, ref), ref)
    assert [t.status for t in lines] == ["failed", "settled"]
    stranger = account(ctx)
    assert claim_transfers(ctx, stranger, ref) == []


def test_a_claimant_without_an_agreement_is_not_paid_through_alipay(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    ref = collected_payout(ctx, clock)
    operator = account(ctx, Role.OPERATOR)
    release_for_payment(ctx, operator, ref)
    with refused("payee_missing"):
        send_transfer(ctx, operator, ref, _NoNetworkAlipay())


def test_a_payout_not_yet_collected_is_not_ready(ctx: ServiceContext, clock: FixedClock) -> None:
    from datetime import timedelta

    from tests.factories import LOCK_MARCH_7, approved_claim, members

    [(_, membership)] = members(ctx, clock, 1)
    ref = approved_claim(ctx, membership.id, 1000, LOCK_MARCH_7 - timedelta(days=1))
    with refused("payout_not_ready"):
        release_for_payment(ctx, account(ctx, Role.OPERATOR), ref)
    with refused("forbidden"):
        release_for_payment(ctx, account(ctx, Role.AUDITOR), ref)


class _NoNetworkAlipay(SimulatedTransfers):
    """Named like Alipay, so the payee is the claimant's Alipay agreement (which they lack)."""

    name = "alipay"


def _claimant(ctx: ServiceContext, ref: str) -> Actor:
    with ctx.reading() as session:
        account_id = session.scalar(select(Claim.claimant_account_id).where(Claim.ref == ref))
    assert account_id is not None
    return Actor(account_id, Role.MEMBER)


def test_the_desk_reads_a_period_in_the_same_few_queries_whatever_its_cases(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    refs = collected_payouts(ctx, clock, 3)
    operator = account(ctx, Role.OPERATOR)
    release_for_payment(ctx, operator, refs[0])
    send_transfer(ctx, operator, refs[0], SimulatedTransfers())
    release_for_payment(ctx, operator, refs[1])
    with QueryCounter(ctx.engine) as counter:
        lines = payout_desk(ctx, operator, MAIN_PLAN)
    assert [(line.claim_ref, line.status) for line in lines] == [
        (refs[0], "paid"),
        (refs[1], "ready"),
        (refs[2], "to_release"),
    ]
    assert counter.count <= 10, counter.statements
