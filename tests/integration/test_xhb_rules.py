"""Xiang Hu Bao's remaining rules (issue 19): an illness in the waiting period ends the membership
and refunds the shares paid; the age-out move into the elderly plan; the chronic-condition cancer
plan and the public-transport accident plan, each its own pool."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from tests.factories import (
    ELDERLY_PLAN,
    LOCK_MARCH_7,
    MAIN_PLAN,
    MARCH_7,
    account,
    approved_claim,
    close_on,
    current_rules_sha256,
    enroll,
    join_at,
    members,
    publish_demo_plans,
    resident_id,
    use_rules,
)

from mutualaid.clock import FixedClock
from mutualaid.db.models import AgeOutMove, AuditEvent, LogEntry, Membership, MembershipRefund
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import ClaimState
from mutualaid.domain.errors import DomainError
from mutualaid.plan_files import read_plan_file
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.collections.debits import collect_period
from mutualaid.services.collections.providers import SimulatedProvider
from mutualaid.services.collections.refunds import mark_refund_paid, refunds_due
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.age_out_moves import age_out_move, set_age_out_move
from mutualaid.services.enrollment.joins import EnrollmentRequest, enroll_member
from mutualaid.services.enrollment.memberships import advance_memberships, get_membership
from mutualaid.services.ledger.ledger import balances, unbalanced_transactions
from mutualaid.services.plans.plans import publish_plan

ELDERLY_ANSWERS = {"tumour": False, "long_hospital_stay": False}
TODAY = date(2026, 3, 1)  # the clock fixture's date in Shanghai
DEBIT_DAY = datetime(2026, 3, 14, 2, tzinfo=UTC)


@pytest.fixture(autouse=True)
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


def _report(ctx: ServiceContext, holder, membership_id: int, **changes):  # type: ignore[no-untyped-def]
    fields = {
        "illness_code": "CI02",
        "diagnosed_on": ctx.clock.now().date() - timedelta(days=1),
        "hospital": "浙江大学医学院附属第一医院",
        "accident": False,
    } | changes
    return report_claim(ctx, holder, ClaimReport(membership_id=membership_id, **fields))


class TestIllnessInTheWaitingPeriod:
    def test_it_ends_the_membership_with_no_payout_and_refunds_the_shares_paid(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        use_rules(ctx)
        people = members(ctx, clock, 3)
        newcomer, joined = join_at(ctx, clock, LOCK_MARCH_7 - timedelta(days=10))
        approved_claim(ctx, people[0][1].id, 1000, LOCK_MARCH_7 - timedelta(days=1))
        close_on(ctx, clock, MARCH_7)
        clock.set(DEBIT_DAY)
        collect_period(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7, SimulatedProvider())

        claim = _report(ctx, newcomer, joined.id, diagnosed_on=date(2026, 3, 13))

        assert (claim.state, claim.payout_fen) == (ClaimState.CLOSED_REJECTED, 0)
        assert claim.decision_reason == "waiting_period"
        ended = get_membership(ctx, newcomer, joined.id)
        assert (ended.state, ended.end_reason) == ("ended", "waiting_illness")
        operator = account(ctx, Role.OPERATOR)
        [due] = refunds_due(ctx, operator, MAIN_PLAN)
        assert (due.membership_id, due.payer_account_id, due.status) == (
            joined.id,
            newcomer.account_id,
            "due",
        )
        assert due.amount_fen == 1000 * 108 // 100 // 4  # its share: 1,080 fen over 4 members
        refunds = f"plan:{MAIN_PLAN}:refunds"
        with ctx.reading() as session:
            assert balances(session, refunds)[refunds] == due.amount_fen
            assert unbalanced_transactions(session) == []
            events = session.scalars(
                select(LogEntry.leaf_data).where(LogEntry.subject_ref == f"m-{joined.id}")
            ).all()
            assert any(b'"event":"waiting_illness"' in bytes(leaf) for leaf in events)

        paid = mark_refund_paid(ctx, operator, due.id)

        assert paid.status == "paid" and refunds_due(ctx, operator, MAIN_PLAN) == []
        with ctx.reading() as session:
            assert balances(session, refunds).get(refunds, 0) == 0
        with pytest.raises(DomainError) as again:
            mark_refund_paid(ctx, operator, due.id)
        assert again.value.code == "refund_already_paid"

    def test_nothing_paid_means_nothing_to_refund(self, ctx: ServiceContext) -> None:
        holder = account(ctx)
        membership = enroll(ctx, holder, date(1990, 5, 1))

        closed = _report(ctx, holder, membership.id, diagnosed_on=TODAY)

        assert closed.state is ClaimState.CLOSED_REJECTED
        assert refunds_due(ctx, account(ctx, Role.OPERATOR), MAIN_PLAN) == []
        with ctx.reading() as session:
            refund = session.scalars(select(MembershipRefund)).one()
            assert (refund.status, refund.amount_fen) == ("none", 0)
        with pytest.raises(DomainError) as refused:
            _report(ctx, holder, membership.id, diagnosed_on=TODAY)
        assert refused.value.code == "not_covered_member"

    def test_an_accident_in_the_waiting_period_stays_covered(self, ctx: ServiceContext) -> None:
        holder = account(ctx)
        membership = enroll(ctx, holder, date(1990, 5, 1))

        claim = _report(ctx, holder, membership.id, diagnosed_on=TODAY, accident=True)

        assert (claim.state, claim.payout_fen) == (ClaimState.SUBMITTED, 30_000_000)
        assert get_membership(ctx, holder, membership.id).state == "waiting"

    def test_an_accident_only_illness_without_an_accident_is_refused(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder = account(ctx)
        membership = enroll(ctx, holder, date(1990, 5, 1))
        with pytest.raises(DomainError) as refused:
            _report(ctx, holder, membership.id, illness_code="CI20", diagnosed_on=TODAY)
        assert (refused.value.code, refused.value.field) == ("accident_only", "accident")


def _born_turning(age: int, on: date) -> date:
    return date(on.year - age, on.month, on.day)


class TestAgeOutMove:
    def test_an_opted_in_member_moves_into_the_elderly_plan_in_one_event(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder = account(ctx)
        # 59 and a half: ages out of the main plan in six months.
        birth_on = _born_turning(60, TODAY + timedelta(days=182))
        membership = enroll(ctx, holder, birth_on)
        before = age_out_move(ctx, holder, membership.id)
        assert (before.opted_in, before.to_plan_code) == (False, ELDERLY_PLAN)
        assert before.moves_on == TODAY + timedelta(days=182)

        chosen = set_age_out_move(ctx, holder, membership.id, True)
        assert chosen.opted_in and chosen.opted_in_at is not None

        clock.set(clock.now() + timedelta(days=183))
        result = advance_memberships(ctx, MAIN_PLAN)

        assert (result.moved, result.aged_out) == (1, 0)
        old = get_membership(ctx, holder, membership.id)
        assert (old.state, old.end_reason) == ("ended", "move_out")
        after = age_out_move(ctx, holder, membership.id)
        assert after.moved_to_membership_id is not None
        new = get_membership(ctx, holder, after.moved_to_membership_id)
        assert (new.plan_code, new.state, new.joined_on) == (
            ELDERLY_PLAN,
            "waiting",
            before.moves_on,
        )
        assert new.waiting_ends_on == before.moves_on + timedelta(days=90)
        with ctx.reading() as session:
            leaves = [
                bytes(leaf)
                for leaf in session.scalars(
                    select(LogEntry.leaf_data).where(
                        LogEntry.subject_ref.in_([f"m-{membership.id}", f"m-{new.id}"])
                    )
                )
            ]
            assert any(b'"event":"move_out"' in leaf for leaf in leaves)
            assert any(b'"event":"move_in"' in leaf for leaf in leaves)
            assert session.scalar(
                select(AuditEvent.id).where(AuditEvent.action == "membership_move_out")
            )
        # The elderly plan's own rules apply: cancer only.
        with pytest.raises(DomainError) as refused:
            _report(ctx, holder, new.id, illness_code="CI02")
        assert refused.value.code == "illness_not_covered"

    def test_a_member_who_did_not_opt_in_simply_ages_out(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        holder = account(ctx)
        membership = enroll(ctx, holder, _born_turning(60, TODAY + timedelta(days=10)))
        clock.set(clock.now() + timedelta(days=11))

        result = advance_memberships(ctx, MAIN_PLAN)

        assert (result.moved, result.aged_out) == (0, 1)
        assert get_membership(ctx, holder, membership.id).end_reason == "aged_out"

    def test_opting_in_before_59_is_refused_and_opting_out_is_allowed(
        self, ctx: ServiceContext
    ) -> None:
        holder = account(ctx)
        young = enroll(ctx, holder, date(1990, 5, 1))
        with pytest.raises(DomainError) as refused:
            set_age_out_move(ctx, holder, young.id, True)
        assert (refused.value.code, refused.value.details["age"]) == ("move_opt_in_too_early", 59)

        older = enroll(
            ctx,
            holder,
            _born_turning(59, TODAY - timedelta(days=5)),
            relation="parent",  # type: ignore[arg-type]
            name="张老华",
        )
        assert set_age_out_move(ctx, holder, older.id, True).opted_in
        assert not set_age_out_move(ctx, holder, older.id, False).opted_in
        with ctx.reading() as session:
            assert session.get(AgeOutMove, older.id) is None

    def test_a_plan_without_a_move_and_an_ended_membership_are_refused(
        self, ctx: ServiceContext
    ) -> None:
        holder = account(ctx)
        elderly = enroll(ctx, holder, date(1960, 1, 1), plan=ELDERLY_PLAN, answers=ELDERLY_ANSWERS)
        with pytest.raises(DomainError) as refused:
            age_out_move(ctx, holder, elderly.id)
        assert refused.value.code == "no_age_out_move"

        other = account(ctx)
        ended = enroll(ctx, other, _born_turning(59, TODAY - timedelta(days=5)))
        _report(ctx, other, ended.id, diagnosed_on=TODAY)  # ends it (waiting period)
        with pytest.raises(DomainError) as refused:
            set_age_out_move(ctx, other, ended.id, True)
        assert refused.value.code == "membership_not_active"


class TestMoreExamplePlans:
    def _publish(self, ctx: ServiceContext, name: str) -> None:
        publish_plan(ctx, None, read_plan_file(name))

    def test_the_chronic_condition_cancer_plan_takes_a_chronic_patient_and_pays_cancer(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        self._publish(ctx, "xhb-chronic-cancer.toml")
        holder = account(ctx)
        clock.set(clock.now() - timedelta(days=200))
        membership = enroll_member(
            ctx,
            holder,
            "xhb-chronic-cancer",
            EnrollmentRequest(
                "张三华",
                resident_id(date(1975, 5, 1)),
                health_answers={"tumour": False},
                rules_sha256=current_rules_sha256(ctx, "xhb-chronic-cancer"),
            ),
        )
        clock.set(clock.now() + timedelta(days=200))

        claim = _report(ctx, holder, membership.id, illness_code="CI01")

        assert (claim.plan_code, claim.state, claim.payout_fen) == (
            "xhb-chronic-cancer",
            ClaimState.SUBMITTED,
            10_000_000,
        )
        with pytest.raises(DomainError) as refused:
            _report(ctx, account(ctx), membership.id, illness_code="CI02")
        assert refused.value.code in ("illness_not_covered", "membership_not_found")

    def test_the_transit_plan_needs_no_declaration_and_pays_accidents_only(
        self, ctx: ServiceContext
    ) -> None:
        self._publish(ctx, "xhb-transit-accident.toml")
        holder = account(ctx)
        baby = enroll_member(
            ctx,
            holder,
            "xhb-transit-accident",
            EnrollmentRequest(
                "张小华",
                resident_id(TODAY - timedelta(days=30)),
                "child",  # type: ignore[arg-type]
                rules_sha256=current_rules_sha256(ctx, "xhb-transit-accident"),
            ),
        )
        adult = enroll_member(
            ctx,
            holder,
            "xhb-transit-accident",
            EnrollmentRequest(
                "张三华",
                resident_id(date(1990, 5, 1)),
                rules_sha256=current_rules_sha256(ctx, "xhb-transit-accident"),
            ),
        )
        with pytest.raises(DomainError) as refused:
            _report(ctx, holder, adult.id, illness_code="TA02", diagnosed_on=TODAY)
        assert refused.value.code == "accident_only"

        claim = _report(
            ctx, holder, adult.id, illness_code="TA02", diagnosed_on=TODAY, accident=True
        )

        assert (claim.state, claim.payout_fen) == (ClaimState.SUBMITTED, 10_000_000)
        assert baby.state == "waiting"
        with pytest.raises(DomainError) as too_old:
            enroll_member(
                ctx,
                account(ctx),
                "xhb-transit-accident",
                EnrollmentRequest(
                    "李四华",
                    resident_id(date(1966, 1, 1)),
                    rules_sha256=current_rules_sha256(ctx, "xhb-transit-accident"),
                ),
            )
        assert too_old.value.code == "too_old"

    def test_each_plan_is_its_own_pool(self, ctx: ServiceContext) -> None:
        self._publish(ctx, "xhb-chronic-cancer.toml")
        self._publish(ctx, "xhb-transit-accident.toml")
        codes = set()
        for plan in ("xhb-chronic-cancer", "xhb-transit-accident", MAIN_PLAN):
            answers = {
                "xhb-chronic-cancer": {"tumour": False},
                "xhb-transit-accident": {},  # no health declaration
            }.get(plan)
            codes.add(
                enroll(ctx, account(ctx), date(1985, 1, 1), plan=plan, answers=answers).plan_code
            )
        assert len(codes) == 3
        with ctx.reading() as session:
            assert len(set(session.scalars(select(Membership.plan_id)).all())) == 3
