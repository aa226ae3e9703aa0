"""Closing periods: who shares, what they pay, caps, surplus, the ledger, the notice, statements."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from tests.factories import (
    LOCK_MARCH_7,
    MAIN_PLAN,
    MARCH_7,
    TEST_TRUST,
    account,
    approved_claim,
    close_on,
    join_at,
    members,
    proven_charge,
    publish_demo_plans,
    use_rules,
)
from tests.refusals import refused

from mutualaid.clock import FixedClock
from mutualaid.db.models import (
    Claim,
    LedgerTransaction,
    LogEntry,
    Membership,
    Period,
    PeriodChargeException,
    PeriodCohort,
)
from mutualaid.domain.accounts import Role
from mutualaid.domain.apportionment import CapExcess, PeriodState
from mutualaid.domain.errors import Conflict, DomainError
from mutualaid.domain.memberships import MembershipEvent
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR, Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.memberships import change_membership
from mutualaid.services.ledger.ledger import balances, unbalanced_transactions
from mutualaid.services.periods.close import close_period
from mutualaid.services.periods.notice import period_notice
from mutualaid.services.periods.proofs import charge_proof
from mutualaid.services.periods.statements import member_statement
from mutualaid.transparency.charge_proofs import ChargeProofError, verify_charge_proof

SHANGHAI = "Asia/Shanghai"


@pytest.fixture(autouse=True)
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


class TestShare:
    def test_the_share_is_aid_plus_fee_over_the_members_rounded_up_and_the_rest_carries(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        use_rules(ctx)
        people = members(ctx, clock, 7)
        approved_claim(ctx, people[0][1].id, 1000, LOCK_MARCH_7 - timedelta(days=3))
        period = close_on(ctx, clock, MARCH_7)
        # aid 1000 + fee 8% 80 = 1080 over 7 members: 154.29 -> 155 each, 1085 in all, 5 over.
        assert (period.member_count, period.case_count) == (7, 1)
        assert (period.aid_fen, period.fee_fen, period.share_fen) == (1000, 80, 155)
        assert (period.total_charged_fen, period.surplus_out_fen, period.sponsor_fen) == (
            1085,
            5,
            0,
        )
        assert period.state is PeriodState.COMMITTED

        quiet = close_on(ctx, clock, date(2026, 3, 21))
        assert (quiet.case_count, quiet.share_fen, quiet.fee_fen, quiet.total_charged_fen) == (
            0,
            0,
            0,
            0,
        )
        assert (quiet.surplus_in_fen, quiet.surplus_out_fen) == (5, 5)

        approved_claim(ctx, people[1][1].id, 2000, datetime(2026, 3, 25, tzinfo=UTC))
        april = close_on(ctx, clock, date(2026, 4, 7))
        # 2000 + 160 − 5 carried = 2155 over 7: 307.86 -> 308, 2156 in all, 1 over.
        assert (april.surplus_in_fen, april.share_fen, april.surplus_out_fen) == (5, 308, 1)
        with ctx.reading() as session:
            assert unbalanced_transactions(session) == []
            accounts = balances(session, f"plan:{MAIN_PLAN}:")
        assert accounts[f"plan:{MAIN_PLAN}:members"] == -(1085 + 2156)
        assert accounts[f"plan:{MAIN_PLAN}:aid_pool"] == 3000
        assert accounts[f"plan:{MAIN_PLAN}:fee_income"] == 240
        assert accounts[f"plan:{MAIN_PLAN}:surplus"] == 1

    def test_a_period_without_a_case_charges_nothing_and_books_nothing(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        members(ctx, clock, 3)
        period = close_on(ctx, clock, MARCH_7)
        assert (
            period.member_count,
            period.share_fen,
            period.fee_fen,
            period.total_charged_fen,
        ) == (3, 0, 0, 0)
        assert period.charges_leaves == 0
        with ctx.reading() as session:
            assert session.scalar(select(func.count()).select_from(LedgerTransaction)) == 0

    def test_a_case_approved_after_the_lock_waits_for_the_next_period(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        use_rules(ctx)
        people = members(ctx, clock, 2)
        late = approved_claim(ctx, people[0][1].id, 500, LOCK_MARCH_7)
        assert close_on(ctx, clock, MARCH_7).case_count == 0
        assert close_on(ctx, clock, date(2026, 3, 21)).case_count == 1
        with ctx.reading() as session:
            claim = session.scalars(select(Claim).where(Claim.ref == late)).one()
            period = session.get_one(Period, claim.period_id)
        assert period.publicity_on == date(2026, 3, 21)


class TestWhoShares:
    def test_joining_at_23_59_the_day_before_shares_and_at_00_00_does_not(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        use_rules(ctx)
        _, before = join_at(ctx, clock, LOCK_MARCH_7 - timedelta(minutes=1))
        _, at_lock = join_at(ctx, clock, LOCK_MARCH_7)
        approved_claim(ctx, before.id, 100, LOCK_MARCH_7 - timedelta(days=1))
        period = close_on(ctx, clock, MARCH_7)
        assert period.member_count == 1
        assert period.share_fen == 108
        assert [
            line.charge_fen for line in member_statement(ctx, SYSTEM_ACTOR, before.id).lines
        ] == [108]
        assert member_statement(ctx, SYSTEM_ACTOR, at_lock.id).lines == []

    def test_a_member_who_leaves_after_the_lock_still_pays_that_period(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        use_rules(ctx)
        (early, leaver), (_, stayer) = members(ctx, clock, 2)
        (_, gone) = members(ctx, clock, 1)[0]
        approved_claim(ctx, stayer.id, 300, LOCK_MARCH_7 - timedelta(days=1))
        clock.set(LOCK_MARCH_7 - timedelta(hours=1))
        change_membership(ctx, SYSTEM_ACTOR, gone.id, MembershipEvent.LEAVE)
        clock.set(LOCK_MARCH_7 + timedelta(hours=1))
        change_membership(ctx, early, leaver.id, MembershipEvent.LEAVE)
        period = close_on(ctx, clock, MARCH_7)
        assert period.member_count == 2
        assert [line.charge_fen for line in member_statement(ctx, early, leaver.id).lines] == [162]
        assert member_statement(ctx, SYSTEM_ACTOR, gone.id).lines == []

    def test_a_member_suspended_at_the_lock_is_not_charged(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        use_rules(ctx)
        people = members(ctx, clock, 3)
        change_membership(ctx, staff_operator(ctx), people[0][1].id, MembershipEvent.SUSPEND)
        approved_claim(ctx, people[1][1].id, 200, LOCK_MARCH_7 - timedelta(days=1))
        period = close_on(ctx, clock, MARCH_7)
        assert period.member_count == 2
        assert [
            (line.status, line.charge_fen)
            for line in member_statement(ctx, SYSTEM_ACTOR, people[0][1].id).lines
        ] == [("excluded", 0)]
        notice = period_notice(ctx, MAIN_PLAN, MARCH_7)
        assert notice.excluded_members == 1
        assert all(check.holds for check in notice.checks)


def staff_operator(ctx: ServiceContext) -> Actor:
    return account(ctx, Role.OPERATOR)


class TestCaps:
    def test_the_per_case_cap_limits_the_share_and_the_sponsor_pays_the_rest(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        # The demo plan: 0.10 yuan per case. 4 members cannot carry a 300,000 yuan case.
        people = members(ctx, clock, 4)
        approved_claim(ctx, people[0][1].id, 30_000_000, LOCK_MARCH_7 - timedelta(days=1))
        approved_claim(ctx, people[1][1].id, 10_000_000, LOCK_MARCH_7 - timedelta(days=2))
        period = close_on(ctx, clock, MARCH_7)
        assert period.share_fen == 20  # 2 cases × 10 fen
        assert period.total_charged_fen == 80
        assert period.sponsor_fen == 40_000_000 + 3_200_000 - 80
        notice = period_notice(ctx, MAIN_PLAN, MARCH_7)
        assert all(check.holds for check in notice.checks), notice.checks
        assert len(notice.cases) == 2
        with ctx.reading() as session:
            assert balances(session, "operator:")["operator:sponsor"] == -(43_200_000 - 80)

    def test_prorated_payouts_instead_of_a_sponsor(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        people = members(ctx, clock, 4)
        approved_claim(ctx, people[0][1].id, 30_000_000, LOCK_MARCH_7 - timedelta(days=1))
        period = close_on(ctx, clock, MARCH_7, cap_excess=CapExcess.PRORATE)
        assert (period.sponsor_fen, period.prorated_fen) == (0, 32_400_000 - 40)
        with ctx.reading() as session:
            accounts = balances(session, f"plan:{MAIN_PLAN}:")
        # The 40 fen collected are split between the aid and the fee in proportion 30 : 2.4.
        assert accounts[f"plan:{MAIN_PLAN}:aid_pool"] == 37
        assert accounts[f"plan:{MAIN_PLAN}:fee_income"] == 3

    def test_nobody_pays_more_than_the_annual_cap_and_the_sponsor_pays_the_excess(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        use_rules(ctx, annual_fen=500, fee_bp=0)
        early = members(ctx, clock, 2)
        approved_claim(ctx, early[0][1].id, 600, datetime(2026, 1, 1, tzinfo=UTC))
        january = close_on(ctx, clock, date(2026, 1, 7))
        assert january.share_fen == 300
        late = members(ctx, clock, 2, when=datetime(2026, 1, 10, tzinfo=UTC))
        approved_claim(ctx, late[0][1].id, 1200, datetime(2026, 1, 15, tzinfo=UTC))
        second = close_on(ctx, clock, date(2026, 1, 21))
        # share 300 each; the January members have 300 so far and pay only 200.
        assert second.share_fen == 300
        assert second.total_charged_fen == 2 * 200 + 2 * 300
        assert second.sponsor_fen == 200
        with ctx.reading() as session:
            cohorts = {
                c.cohort_on: (c.member_count, c.charge_fen)
                for c in session.scalars(select(PeriodCohort))
            }
        assert cohorts == {date(2026, 1, 7): (2, 200), date(2026, 1, 21): (2, 300)}
        for _, membership in early + late:
            statement = member_statement(ctx, SYSTEM_ACTOR, membership.id)
            assert statement.charged_fen <= 500
        assert all(c.holds for c in period_notice(ctx, MAIN_PLAN, date(2026, 1, 21)).checks)

    def test_a_member_who_left_and_rejoined_still_never_passes_the_annual_cap(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        use_rules(ctx, annual_fen=500, fee_bp=0)
        holder, first = join_at(ctx, clock, datetime(2025, 6, 1, tzinfo=UTC))
        others = members(ctx, clock, 1)
        approved_claim(ctx, others[0][1].id, 800, datetime(2026, 1, 2, tzinfo=UTC))
        close_on(ctx, clock, date(2026, 1, 7))  # 400 each
        clock.set(datetime(2026, 1, 8, tzinfo=UTC))
        change_membership(ctx, holder, first.id, MembershipEvent.LEAVE)
        clock.set(datetime(2026, 1, 9, tzinfo=UTC))
        second = enroll_again(ctx, holder, first.id)
        approved_claim(ctx, first.id, 800, datetime(2026, 1, 15, tzinfo=UTC))
        period = close_on(ctx, clock, date(2026, 1, 21))
        assert period.share_fen == 400
        # The rejoined person has paid 400 this year under the old membership: 100 more at most.
        statement = member_statement(ctx, holder, second)
        assert [line.charge_fen for line in statement.lines] == [100]
        with ctx.reading() as session:
            exception = session.scalars(select(PeriodChargeException)).one()
        assert (exception.membership_id, exception.kind, exception.amount_fen) == (
            second,
            "cap_adjusted",
            100,
        )
        assert period.total_charged_fen == 100 + 100
        assert all(c.holds for c in period_notice(ctx, MAIN_PLAN, date(2026, 1, 21)).checks)


def enroll_again(ctx: ServiceContext, holder: Actor, old_membership_id: int) -> int:
    from tests.factories import HEALTHY, current_rules_sha256

    from mutualaid.db.models import Person

    with ctx.reading() as session:
        membership = session.get_one(Membership, old_membership_id)
        person = session.get_one(Person, membership.person_id)
        number = ctx.protector.decrypt(person.identity_ciphertext)
    from mutualaid.services.enrollment.joins import EnrollmentRequest, enroll_member

    return enroll_member(
        ctx,
        holder,
        MAIN_PLAN,
        EnrollmentRequest(
            full_name="张三华",
            id_number=number,
            health_answers=HEALTHY,
            rules_sha256=current_rules_sha256(ctx),
        ),
    ).id


class TestClosing:
    def test_closing_twice_changes_nothing(self, ctx: ServiceContext, clock: FixedClock) -> None:
        use_rules(ctx)
        people = members(ctx, clock, 3)
        approved_claim(ctx, people[0][1].id, 999, LOCK_MARCH_7 - timedelta(days=1))
        first = close_on(ctx, clock, MARCH_7)
        again = close_on(ctx, clock, MARCH_7)
        assert first == again
        with ctx.reading() as session:
            assert session.scalar(select(func.count()).select_from(LedgerTransaction)) == 1
            assert (
                session.scalar(
                    select(func.count())
                    .select_from(LogEntry)
                    .where(LogEntry.leaf_type == "period_commitment")
                )
                == 1
            )

    def test_a_period_cannot_be_closed_before_its_lock_or_out_of_order(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        clock.set(LOCK_MARCH_7 - timedelta(seconds=1))
        with pytest.raises(DomainError) as early:
            close_period(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7)
        assert early.value.code == "period_not_locked_yet"
        with pytest.raises(DomainError) as wrong_day:
            close_period(ctx, SYSTEM_ACTOR, MAIN_PLAN, date(2026, 3, 8))
        assert wrong_day.value.code == "not_a_publicity_day"
        close_on(ctx, clock, date(2026, 3, 21))
        with pytest.raises(Conflict) as out_of_order:
            close_on(ctx, clock, MARCH_7)
        assert out_of_order.value.code == "later_period_closed"

    def test_only_an_operator_closes_a_period(self, ctx: ServiceContext, clock: FixedClock) -> None:
        with refused("forbidden"):
            close_on_as(ctx, clock, account(ctx))


def close_on_as(ctx: ServiceContext, clock: FixedClock, actor: Actor) -> None:
    clock.set(datetime(2026, 3, 7, 1, tzinfo=UTC))
    close_period(ctx, actor, MAIN_PLAN, MARCH_7)


class TestProofs:
    def test_a_member_can_prove_their_charge_is_in_the_committed_root(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        use_rules(ctx)
        people = members(ctx, clock, 5)
        approved_claim(ctx, people[0][1].id, 1000, LOCK_MARCH_7 - timedelta(days=1))
        period = close_on(ctx, clock, MARCH_7)
        holder, membership = people[3]
        with refused("commitment_not_yet_checkpointed"):
            charge_proof(ctx, holder, membership.id, MAIN_PLAN, MARCH_7)
        report = proven_charge(ctx, holder, membership.id, MARCH_7)
        proof = charge_proof(ctx, holder, membership.id, MAIN_PLAN, MARCH_7)
        assert proof.charge_fen == period.share_fen == report.commitment.fields["share_fen"]
        assert len(proof.block) == 5
        assert proof.charges_root.hex() == period.charges_root
        assert proof.commitment_leaf is not None
        assert period.charges_root in proof.commitment_leaf.decode()
        from dataclasses import replace

        tampered = replace(
            proof, block=tuple((m, c - 1) if m != membership.id else (m, c) for m, c in proof.block)
        )
        with pytest.raises(ChargeProofError) as refusal:
            verify_charge_proof(tampered, TEST_TRUST)
        assert refusal.value.link == "block in charges tree"
        with refused("membership_not_found"):
            charge_proof(ctx, account(ctx), membership.id, MAIN_PLAN, MARCH_7)
        close_on(ctx, clock, date(2026, 3, 21))  # no case: nothing charged, nothing to prove
        with pytest.raises(DomainError) as nothing:
            charge_proof(ctx, holder, membership.id, MAIN_PLAN, date(2026, 3, 21))
        assert nothing.value.code == "not_charged"

    @pytest.mark.parametrize("block_bits", [10, 1])
    def test_the_committed_root_is_every_members_charge_recomputed_from_the_statements(
        self,
        ctx: ServiceContext,
        clock: FixedClock,
        block_bits: int,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """With blocks of 2 ids and ranges of one block, most ranges hold one or two members."""
        import mutualaid.domain.apportionment
        import mutualaid.services.periods.charges

        for module in (mutualaid.domain.apportionment, mutualaid.services.periods.charges):
            monkeypatch.setattr(module, "BLOCK_BITS", block_bits)
        from collections import defaultdict

        from mutualaid.domain.apportionment import charges_leaf
        from mutualaid.services.periods.charges import charge_blocks
        from mutualaid.services.periods.sharing import charge_rule
        from mutualaid.transparency.merkle import MemoryTree, hash_leaf

        use_rules(ctx, annual_fen=400, fee_bp=0)
        people = members(ctx, clock, 6)
        approved_claim(ctx, people[0][1].id, 1200, datetime(2026, 1, 2, tzinfo=UTC))
        close_on(ctx, clock, date(2026, 1, 7))
        members(ctx, clock, 3, when=datetime(2026, 1, 10, tzinfo=UTC))
        change_membership(ctx, staff_operator(ctx), people[5][1].id, MembershipEvent.SUSPEND)
        approved_claim(ctx, people[1][1].id, 2400, datetime(2026, 1, 15, tzinfo=UTC))
        period = close_on(ctx, clock, date(2026, 1, 21))
        assert period.sponsor_fen  # the annual cap binds for the January members
        blocks: dict[int, list[tuple[int, int]]] = defaultdict(list)
        with ctx.reading() as session:
            ids = session.scalars(select(Membership.id).order_by(Membership.id)).all()
        for membership_id in ids:
            for line in member_statement(ctx, SYSTEM_ACTOR, membership_id).lines:
                if line.period_ref == period.ref and line.status != "excluded":
                    blocks[membership_id >> block_bits].append((membership_id, line.charge_fen))
        leaves = [charges_leaf(period.ref, b, pairs) for b, pairs in sorted(blocks.items())]
        assert MemoryTree.from_entries(leaves).root().hex() == period.charges_root
        with ctx.reading() as session:
            row = session.scalars(select(Period).where(Period.ref == period.ref)).one()
            rule = charge_rule(session, row)
            ranged = charge_blocks(session, rule, range_block_bits=0)
            assert [b.leaf_hash for b in ranged] == [hash_leaf(leaf) for leaf in leaves]
        for membership_id in ids[1:5]:
            if membership_id != people[5][1].id:
                proven_charge(ctx, SYSTEM_ACTOR, membership_id, date(2026, 1, 21))
