"""Collecting shares, failed payments, prepaid balances, the collection file, and payouts."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from tests.factories import (
    LOCK_MARCH_7,
    MAIN_PLAN,
    MARCH_7,
    approved_claim,
    close_on,
    join_at,
    members,
    publish_demo_plans,
    use_rules,
)
from tests.refusals import refused

from mutualaid.clock import FixedClock
from mutualaid.db.models import Claim, CollectionFailure, Membership, Notification
from mutualaid.domain.apportionment import CapExcess, PeriodState
from mutualaid.domain.claims import ClaimState
from mutualaid.domain.errors import Conflict
from mutualaid.domain.memberships import Relation
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.collections.debits import collect_period
from mutualaid.services.collections.files import (
    export_collection_file,
    import_collection_results,
    results_file_text,
)
from mutualaid.services.collections.payouts import pay_approved_claims
from mutualaid.services.collections.prepaid import prepaid_balance, top_up
from mutualaid.services.collections.providers import SimulatedProvider
from mutualaid.services.collections.retries import retry_failed_payments
from mutualaid.services.context import ServiceContext
from mutualaid.services.ledger.ledger import balances, unbalanced_transactions
from mutualaid.services.periods.statements import member_statement

MEMBERS = f"plan:{MAIN_PLAN}:members"
DEBIT_DAY = datetime(2026, 3, 14, 2, tzinfo=UTC)  # 10:00 Shanghai on the 14th


@pytest.fixture(autouse=True)
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


def state_of(ctx: ServiceContext, membership_id: int) -> tuple[str, str | None]:
    with ctx.reading() as session:
        m = session.get_one(Membership, membership_id)
        return m.state, m.end_reason


def collect(
    ctx: ServiceContext, clock: FixedClock, provider: SimulatedProvider | None, **kw: object
):  # type: ignore[no-untyped-def]
    clock.set(DEBIT_DAY)
    return collect_period(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7, provider, **kw)  # type: ignore[arg-type]


class TestPostPaid:
    def test_every_share_is_collected_once_and_the_members_owe_nothing(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        use_rules(ctx)
        people = members(ctx, clock, 5)
        approved_claim(ctx, people[0][1].id, 1000, LOCK_MARCH_7 - timedelta(days=1))
        close_on(ctx, clock, MARCH_7)
        provider = SimulatedProvider()
        run = collect(ctx, clock, provider, chunk=2)
        assert (run.collected_fen, run.failed_fen, run.payers_asked) == (5 * 216, 0, 5)
        assert sorted(provider.debits.values()) == sorted((a.account_id, 216) for a, _ in people)
        again = collect(ctx, clock, provider)
        assert again.state is PeriodState.COLLECTED
        assert len(provider.debits) == 5
        with ctx.reading() as session:
            assert balances(session, MEMBERS)[MEMBERS] == 0
            assert session.scalar(select(func.count()).select_from(CollectionFailure)) == 0
        statement = member_statement(ctx, people[2][0], people[2][1].id)
        assert [(line.status, line.paid_fen) for line in statement.lines] == [("paid", 216)]

    def test_a_failed_payment_suspends_then_a_retry_reinstates(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        use_rules(ctx)
        people = members(ctx, clock, 3)
        approved_claim(ctx, people[0][1].id, 300, LOCK_MARCH_7 - timedelta(days=1))
        close_on(ctx, clock, MARCH_7)
        holder, membership = people[1]
        provider = SimulatedProvider(failing={holder.account_id})
        run = collect(ctx, clock, provider)
        assert run.failed_fen == 108
        assert state_of(ctx, membership.id)[0] == "suspended"
        assert [line.status for line in member_statement(ctx, holder, membership.id).lines] == [
            "unpaid"
        ]
        with ctx.reading() as session:
            assert (
                session.scalar(
                    select(Notification.kind).where(
                        Notification.account_id == holder.account_id,
                        Notification.subject_type == "period",
                    )
                )
                == "share_payment_failed"
            )

        provider.failing.clear()
        clock.set(DEBIT_DAY + timedelta(days=2))
        retried = retry_failed_payments(ctx, SYSTEM_ACTOR, MAIN_PLAN, provider)
        assert (retried.paid_late, retried.removed) == (1, 0)
        assert state_of(ctx, membership.id)[0] == "covered"
        assert [
            (line.status, line.paid_fen)
            for line in member_statement(ctx, holder, membership.id).lines
        ] == [("paid_late", 108)]
        with ctx.reading() as session:
            assert balances(session, MEMBERS)[MEMBERS] == 0

    def test_unpaid_after_the_retry_days_the_member_is_removed_and_the_sponsor_covers_it(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        use_rules(ctx, retry_days=5)
        people = members(ctx, clock, 3)
        approved_claim(ctx, people[0][1].id, 300, LOCK_MARCH_7 - timedelta(days=1))
        close_on(ctx, clock, MARCH_7)
        holder, membership = people[2]
        provider = SimulatedProvider(failing={holder.account_id})
        collect(ctx, clock, provider)
        for day in range(1, 6):
            clock.set(DEBIT_DAY + timedelta(days=day))
            assert retry_failed_payments(ctx, SYSTEM_ACTOR, MAIN_PLAN, provider).still_failing == 1
            assert state_of(ctx, membership.id)[0] == "suspended"
        clock.set(DEBIT_DAY + timedelta(days=6))
        final = retry_failed_payments(ctx, SYSTEM_ACTOR, MAIN_PLAN, provider)
        assert (final.removed, final.written_off_fen) == (1, 108)
        assert state_of(ctx, membership.id) == ("ended", "removed_unpaid")
        with ctx.reading() as session:
            accounts = balances(session)
            failure = session.scalars(select(CollectionFailure)).one()
            assert failure.attempts == 6
        assert accounts[MEMBERS] == 0
        assert accounts["operator:sponsor"] == -108
        # Removed after the lock of 21 March? No: before it, so it no longer shares.
        march_21 = close_on(ctx, clock, date(2026, 3, 21))
        assert march_21.member_count == 2

    def test_the_payers_own_share_is_taken_first_then_family_by_joining_order(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        use_rules(ctx)
        holder, child = join_at(
            ctx, clock, datetime(2025, 5, 1, tzinfo=UTC), relation=Relation.CHILD
        )
        _, spouse = join_at(ctx, clock, datetime(2025, 5, 2, tzinfo=UTC), holder, Relation.SPOUSE)
        _, own = join_at(ctx, clock, datetime(2025, 5, 3, tzinfo=UTC), holder, Relation.SELF)
        others = members(ctx, clock, 1)
        approved_claim(ctx, others[0][1].id, 400, LOCK_MARCH_7 - timedelta(days=1))
        period = close_on(ctx, clock, MARCH_7)
        share = period.share_fen
        assert share == 108
        provider = SimulatedProvider(
            funds={holder.account_id: 2 * share + 50, others[0][0].account_id: 1000}
        )
        run = collect(ctx, clock, provider)
        assert run.failed_fen == share
        assert state_of(ctx, own.id)[0] != "suspended"
        assert state_of(ctx, child.id)[0] != "suspended"
        assert state_of(ctx, spouse.id)[0] == "suspended"
        with ctx.reading() as session:
            assert session.scalars(select(CollectionFailure.membership_id)).all() == [spouse.id]


class TestCollectionFile:
    def test_the_file_lists_each_payer_once_and_the_results_are_applied(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        use_rules(ctx)
        holder, first = join_at(ctx, clock, datetime(2025, 5, 1, tzinfo=UTC))
        _, second = join_at(ctx, clock, datetime(2025, 5, 2, tzinfo=UTC), holder, Relation.CHILD)
        others = members(ctx, clock, 2)
        approved_claim(ctx, others[0][1].id, 400, LOCK_MARCH_7 - timedelta(days=1))
        period = close_on(ctx, clock, MARCH_7)
        out = io.BytesIO()
        clock.set(DEBIT_DAY)
        assert export_collection_file(ctx, MAIN_PLAN, MARCH_7, out) == 4
        lines = out.getvalue().decode().splitlines()
        share = period.share_fen or 0
        assert lines[0] == "membership_id,payer_account_id,amount_fen,reference"
        assert lines[1:3] == [
            f"{m},{holder.account_id},{share},{period.ref}:{m}" for m in (first.id, second.id)
        ]
        # The provider took the child's share and refused the holder's: the holder's own share
        # is taken first all the same, so the child's is the one left unpaid.
        text = results_file_text([(first.id, "failed"), (second.id, "paid")])
        run = import_collection_results(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7, text.splitlines())
        assert run.failed_fen == share
        assert state_of(ctx, first.id)[0] == "waiting"  # as stored; not suspended
        assert state_of(ctx, second.id)[0] == "suspended"
        with refused("already_collected", Conflict):
            import_collection_results(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7, text.splitlines())
        with refused("period_not_found"):
            import_collection_results(ctx, SYSTEM_ACTOR, MAIN_PLAN, date(2026, 3, 21), ["x,y"])
        with ctx.reading() as session:
            assert balances(session, MEMBERS)[MEMBERS] == -(period.share_fen or 0)
            assert unbalanced_transactions(session) == []


class TestPrepaid:
    def test_shares_come_off_the_balance_and_a_low_balance_is_reminded(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        use_rules(ctx, funding_model="prepaid")
        rich, poor, empty = members(ctx, clock, 3)
        assert top_up(ctx, rich[0], MAIN_PLAN, 1000, idempotency_key="t1").balance_fen == 1000
        assert top_up(ctx, rich[0], MAIN_PLAN, 1000, idempotency_key="t1").balance_fen == 1000
        top_up(ctx, poor[0], MAIN_PLAN, 150)
        approved_claim(ctx, rich[1].id, 300, LOCK_MARCH_7 - timedelta(days=1))
        period = close_on(ctx, clock, MARCH_7)
        assert period.share_fen == 108
        run = collect(ctx, clock, None)
        assert (run.collected_fen, run.failed_fen) == (216, 108)
        assert prepaid_balance(ctx, rich[0], MAIN_PLAN).balance_fen == 892
        assert prepaid_balance(ctx, poor[0], MAIN_PLAN).balance_fen == 42
        assert state_of(ctx, empty[1].id)[0] == "suspended"
        with ctx.reading() as session:
            low = session.scalars(
                select(Notification.account_id).where(Notification.kind == "prepaid_balance_low")
            ).all()
            assert low == [poor[0].account_id, empty[0].account_id]
            accounts = balances(session)
        assert accounts[f"plan:{MAIN_PLAN}:prepaid"] == 892 + 42
        assert accounts[MEMBERS] == -108
        top_up(ctx, empty[0], MAIN_PLAN, 500)
        clock.set(DEBIT_DAY + timedelta(days=1))
        assert retry_failed_payments(ctx, SYSTEM_ACTOR, MAIN_PLAN).paid_late == 1
        assert prepaid_balance(ctx, empty[0], MAIN_PLAN).balance_fen == 392


class TestPayouts:
    def test_each_case_is_paid_once_after_collection_and_a_severe_payout_ends_cover(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        use_rules(ctx)
        people = members(ctx, clock, 4)
        severe = approved_claim(ctx, people[0][1].id, 1000, LOCK_MARCH_7 - timedelta(days=1))
        mild = approved_claim(
            ctx, people[1][1].id, 500, LOCK_MARCH_7 - timedelta(days=2), tier="mild"
        )
        close_on(ctx, clock, MARCH_7)
        with refused("period_not_collected", Conflict):
            pay_approved_claims(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7)
        collect(ctx, clock, SimulatedProvider())
        run = pay_approved_claims(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7)
        assert run.state is PeriodState.PAID
        assert {(p.claim_ref, p.amount_fen, p.payee_account_id) for p in run.payouts} == {
            (severe, 1000, people[0][0].account_id),
            (mild, 500, people[1][0].account_id),
        }
        assert pay_approved_claims(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7).payouts == []
        with ctx.reading() as session:
            states = dict(session.execute(select(Claim.ref, Claim.state)).all())
            accounts = balances(session, f"plan:{MAIN_PLAN}:")
        assert states == {severe: ClaimState.PAID, mild: ClaimState.PAID}
        assert state_of(ctx, people[0][1].id) == ("ended", "severe_payout")
        assert state_of(ctx, people[1][1].id)[0] == "waiting"
        assert accounts[f"plan:{MAIN_PLAN}:aid_pool"] == 0
        assert accounts[f"plan:{MAIN_PLAN}:payouts"] == 1500

    def test_prorated_payouts_share_the_shortfall_and_still_add_up(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        people = members(ctx, clock, 3)
        approved_claim(ctx, people[0][1].id, 30_000_000, LOCK_MARCH_7 - timedelta(days=1))
        approved_claim(ctx, people[1][1].id, 10_000_000, LOCK_MARCH_7 - timedelta(days=2))
        period = close_on(ctx, clock, MARCH_7, cap_excess=CapExcess.PRORATE)
        collect(ctx, clock, SimulatedProvider())
        run = pay_approved_claims(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7)
        # 3 members × 20 fen collected: that is all there is for 432,000 yuan of aid and fee.
        assert period.prorated_fen == 43_200_000 - 60
        paid = sorted(p.amount_fen for p in run.payouts)
        assert paid == [14, 42]  # 60 × 40/43.2 = 55.6 of aid, split 1:3 between the cases
        with ctx.reading() as session:
            accounts = balances(session, f"plan:{MAIN_PLAN}:")
        assert accounts.get(f"plan:{MAIN_PLAN}:aid_pool", 0) == 0
        assert accounts[f"plan:{MAIN_PLAN}:fee_income"] + sum(paid) == 60

    def test_a_sponsored_case_is_paid_by_the_operator_not_shared(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        use_rules(ctx)
        people = members(ctx, clock, 2)
        approved_claim(
            ctx, people[0][1].id, 10_000, LOCK_MARCH_7 - timedelta(days=1), sponsored=True
        )
        period = close_on(ctx, clock, MARCH_7)
        assert (period.case_count, period.share_fen, period.sponsored_aid_fen) == (0, 0, 10_000)
        collect(ctx, clock, SimulatedProvider())
        assert pay_approved_claims(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7).total_fen == 10_000
        with ctx.reading() as session:
            assert balances(session, "operator:")["operator:sponsor"] == -10_000
