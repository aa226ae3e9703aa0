"""The member's side of the money (issue 17): consent to the rules at joining, the debit
agreement an Alipay plan waits for, paying an unpaid share now and topping up in yuan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from tests.factories import (
    LOCK_MARCH_7,
    MAIN_PLAN,
    MARCH_7,
    account,
    approved_claim,
    close_on,
    current_rules_sha256,
    enroll,
    members,
    publish_demo_plans,
    use_rules,
)
from tests.refusals import refused

from mutualaid.clock import FixedClock
from mutualaid.db.models import CollectionFailure, Membership, PaymentAgreement
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR, Actor
from mutualaid.services.collections.debits import collect_period
from mutualaid.services.collections.providers import SimulatedProvider
from mutualaid.services.context import ServiceContext
from mutualaid.services.payments.member_payments import (
    my_payments,
    pay_share_now,
    top_up_in_yuan,
)

DEBIT_DAY = datetime(2026, 3, 14, 2, tzinfo=UTC)
ALIPAY = '\n[payments]\nprovider = "alipay"\n'


@pytest.fixture(autouse=True)
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


def test_joining_records_the_rules_the_member_agreed_to(ctx: ServiceContext) -> None:
    holder = account(ctx)
    joined = enroll(ctx, holder, datetime(1990, 5, 1).date())
    with ctx.reading() as session:
        membership = session.get_one(Membership, joined.id)
        assert (membership.plan_version, membership.rules_sha256) == (
            1,
            current_rules_sha256(ctx),
        )


def test_joining_without_consent_is_refused(ctx: ServiceContext) -> None:
    with refused("consent_required") as caught:
        enroll(ctx, account(ctx), datetime(1990, 5, 1).date(), rules_sha256=None)
    assert caught.value.details["rules_sha256"] == current_rules_sha256(ctx)  # type: ignore[attr-defined]


def test_consent_to_rules_that_changed_since_is_refused_with_the_current_hash(
    ctx: ServiceContext,
) -> None:
    read = current_rules_sha256(ctx)
    use_rules(ctx, fee_bp=500)  # version 2
    with refused("rules_changed") as caught:
        enroll(ctx, account(ctx), datetime(1990, 5, 1).date(), rules_sha256=read)
    details = caught.value.details  # type: ignore[attr-defined]
    assert details == {"rules_sha256": current_rules_sha256(ctx), "version": 2}
    assert details["rules_sha256"] != read


def test_a_post_paid_alipay_plan_waits_for_the_debit_agreement(ctx: ServiceContext) -> None:
    use_rules(ctx, tables=ALIPAY)
    holder = account(ctx)
    with refused("debit_authorisation_required"):
        enroll(ctx, holder, datetime(1990, 5, 1).date())
    with ctx.sessions.begin() as session:
        session.add(
            PaymentAgreement(
                provider="alipay",
                account_id=holder.account_id,
                external_no="MAAG-test-1",
                agreement_no="20265314000000000001",
                status="active",
                created_at=ctx.clock.now(),
                signed_at=ctx.clock.now(),
            )
        )
    assert enroll(ctx, holder, datetime(1990, 5, 1).date()).state == "waiting"
    view = my_payments(ctx, holder)
    assert view.agreement_active
    assert [(p.plan_code, p.provider, p.needs_agreement) for p in view.plans] == [
        (MAIN_PLAN, "alipay", True)
    ]


def test_a_prepaid_plan_needs_no_agreement(ctx: ServiceContext) -> None:
    use_rules(ctx, funding_model="prepaid", tables=ALIPAY)
    assert enroll(ctx, account(ctx), datetime(1990, 5, 1).date()).state == "waiting"


def _failed_share(ctx: ServiceContext, clock: FixedClock) -> tuple[Actor, int, int]:
    use_rules(ctx)
    people = members(ctx, clock, 3)
    approved_claim(ctx, people[0][1].id, 300, LOCK_MARCH_7 - timedelta(days=1))
    close_on(ctx, clock, MARCH_7)
    holder, membership = people[1]
    clock.set(DEBIT_DAY)
    collect_period(
        ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7, SimulatedProvider(failing={holder.account_id})
    )
    [unpaid] = my_payments(ctx, holder).unpaid
    return holder, unpaid.failure_id, membership.id


def test_paying_a_failed_share_now_reinstates_the_membership_once(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    holder, failure_id, membership_id = _failed_share(ctx, clock)
    with ctx.reading() as session:
        assert session.get_one(Membership, membership_id).state == "suspended"
    clock.set(DEBIT_DAY + timedelta(days=1))
    paid = pay_share_now(ctx, holder, failure_id, idempotency_key="k1")
    assert paid.amount_fen == 108
    with ctx.reading() as session:
        assert session.get_one(Membership, membership_id).state == "covered"
        assert session.get_one(CollectionFailure, failure_id).status == "paid_late"
    assert my_payments(ctx, holder).unpaid == []
    with refused("nothing_to_pay"):
        pay_share_now(ctx, holder, failure_id, idempotency_key="k1")


def test_nobody_pays_a_share_that_is_not_theirs(ctx: ServiceContext, clock: FixedClock) -> None:
    _, failure_id, _ = _failed_share(ctx, clock)
    with refused("nothing_to_pay"):
        pay_share_now(ctx, account(ctx), failure_id)
    with ctx.reading() as session:
        status = session.scalar(
            select(CollectionFailure.status).where(CollectionFailure.id == failure_id)
        )
    assert status == "retrying"


@pytest.mark.parametrize("amount", ["", "abc", "0", "0.5", "1.234", "100000.01", "-5"])
def test_a_top_up_out_of_bounds_is_refused(ctx: ServiceContext, amount: str) -> None:
    use_rules(ctx, funding_model="prepaid")
    with refused("invalid_top_up") as caught:
        top_up_in_yuan(ctx, account(ctx), MAIN_PLAN, amount)
    assert caught.value.details == {"min_yuan": "1.00", "max_yuan": "100,000.00"}  # type: ignore[attr-defined]


def test_a_top_up_in_yuan_adds_to_the_balance(ctx: ServiceContext) -> None:
    use_rules(ctx, funding_model="prepaid")
    holder = account(ctx)
    assert top_up_in_yuan(ctx, holder, MAIN_PLAN, "¥1,234.50", idempotency_key="t").balance_fen == (
        123450
    )
    assert [p.balance_fen for p in my_payments(ctx, holder).plans] == [123450]
