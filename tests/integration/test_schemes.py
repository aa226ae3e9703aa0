"""Sponsored schemes (operator-paid special cover) and promotional sponsorship of periods."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from tests.builders.claims import through_investigation
from tests.builders.schemes import COVID
from tests.factories import (
    LOCK_MARCH_7,
    MAIN_PLAN,
    MARCH_7,
    account,
    approved_claim,
    close_on,
    covered_member,
    enroll,
    members,
    publish_demo_plans,
    staff,
    use_rules,
)
from tests.refusals import refused

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.domain.apportionment import CapExcess
from mutualaid.domain.claims import ClaimState
from mutualaid.domain.errors import Conflict, DomainError, Forbidden, NotFound
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.claims.claims import ClaimView
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.publicity import run_publicity
from mutualaid.services.claims.review import decide_claim
from mutualaid.services.claims.views import get_claim
from mutualaid.services.collections.debits import collect_period
from mutualaid.services.collections.payouts import pay_approved_claims
from mutualaid.services.collections.providers import SimulatedProvider
from mutualaid.services.context import ServiceContext
from mutualaid.services.ledger.ledger import balances, unbalanced_transactions
from mutualaid.services.periods.notice import period_notice
from mutualaid.services.periods.statements import member_statement
from mutualaid.services.plans.schemes import (
    attach_scheme,
    list_schemes,
    list_sponsorships,
    sponsor_periods,
)


@pytest.fixture(autouse=True)
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


def file_under_scheme(
    ctx: ServiceContext,
    holder,
    membership_id: int,
    diagnosed_on: date,  # type: ignore[no-untyped-def]
    scheme: str = "covid-19",
) -> ClaimView:
    return report_claim(
        ctx,
        holder,
        ClaimReport(
            membership_id=membership_id,
            illness_code="-",
            diagnosed_on=diagnosed_on,
            hospital="武汉市金银潭医院",
            scheme_code=scheme,
        ),
    )


def approve_through_publicity(ctx: ServiceContext, clock: FixedClock, ref: str) -> None:
    """Review, investigation, re-review and three days of publicity (from 7 March)."""
    through_investigation(ctx, ref)
    decide_claim(ctx, staff(ctx, Role.REVIEWER), ref, approve=True)
    operator = staff(ctx, Role.OPERATOR)
    clock.set(datetime(2026, 3, 6, 16, 0, tzinfo=UTC))
    run_publicity(ctx, MAIN_PLAN, operator)
    clock.set(datetime(2026, 3, 9, 16, 0, tzinfo=UTC))
    run_publicity(ctx, MAIN_PLAN, operator)


class TestAttaching:
    def test_attaching_the_same_scheme_twice_changes_nothing_and_other_terms_are_refused(
        self, ctx: ServiceContext
    ) -> None:
        first = attach_scheme(ctx, SYSTEM_ACTOR, MAIN_PLAN, COVID)
        again = attach_scheme(ctx, SYSTEM_ACTOR, MAIN_PLAN, COVID)
        assert first == again and first.payout_fen == 10_000_000
        assert [s.code for s in list_schemes(ctx, MAIN_PLAN)] == ["covid-19"]
        with pytest.raises(Conflict) as error:
            attach_scheme(ctx, SYSTEM_ACTOR, MAIN_PLAN, COVID.replace("10_000_000", "5_000_000"))
        assert error.value.code == "scheme_exists"

    def test_a_malformed_scheme_is_refused_with_its_key(self, ctx: ServiceContext) -> None:
        with pytest.raises(DomainError) as error:
            attach_scheme(ctx, SYSTEM_ACTOR, MAIN_PLAN, COVID.replace("payout_fen", "payout"))
        assert (error.value.code, error.value.field) == ("invalid_scheme", "payout")
        with pytest.raises(DomainError) as error:
            attach_scheme(ctx, SYSTEM_ACTOR, MAIN_PLAN, COVID + "ends_on = 2026-01-01\n")
        assert error.value.code == "invalid_scheme"
        assert error.value.field == "ends_on"

    def test_only_an_operator_attaches_a_scheme(self, ctx: ServiceContext) -> None:
        with refused("forbidden", Forbidden):
            attach_scheme(ctx, staff(ctx, Role.REVIEWER), MAIN_PLAN, COVID)
        assert list_schemes(ctx, MAIN_PLAN) == []


class TestEligibility:
    def test_a_member_from_before_the_start_is_covered_at_once_with_the_schemes_payout(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        attach_scheme(ctx, SYSTEM_ACTOR, MAIN_PLAN, COVID)
        holder, membership = covered_member(ctx, clock)
        claim = file_under_scheme(ctx, holder, membership.id, date(2026, 2, 25))
        assert (claim.illness_code, claim.payout_fen, claim.sponsored) == (
            "COVID19-DEATH",
            10_000_000,
            True,
        )

    def test_a_member_who_joined_after_the_start_needs_a_diagnosis_more_than_6_days_later(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        attach_scheme(ctx, SYSTEM_ACTOR, MAIN_PLAN, COVID)
        holder = account(ctx)
        clock.set(datetime(2026, 2, 20, 2, tzinfo=UTC))
        membership = enroll(ctx, holder, date(1990, 5, 1))
        clock.set(datetime(2026, 3, 1, 2, tzinfo=UTC))
        with pytest.raises(DomainError) as error:
            file_under_scheme(ctx, holder, membership.id, date(2026, 2, 26))  # 6 days: no
        assert (error.value.code, error.value.field) == ("scheme_waiting_period", "diagnosed_on")
        # 7 days after joining: covered, although the plan's own 90-day waiting period runs.
        claim = file_under_scheme(ctx, holder, membership.id, date(2026, 2, 27))
        assert claim.sponsored and claim.state is ClaimState.SUBMITTED

    def test_a_diagnosis_before_the_scheme_started_or_an_unknown_scheme_is_refused(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        attach_scheme(ctx, SYSTEM_ACTOR, MAIN_PLAN, COVID)
        holder, membership = covered_member(ctx, clock)
        with pytest.raises(DomainError) as error:
            file_under_scheme(ctx, holder, membership.id, date(2026, 1, 30))
        assert error.value.code == "before_scheme_start"
        with pytest.raises(NotFound) as missing:
            file_under_scheme(ctx, holder, membership.id, date(2026, 2, 25), scheme="sars")
        assert missing.value.code == "scheme_not_found"

    def test_a_claim_for_the_plans_own_cover_is_still_shared(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        attach_scheme(ctx, SYSTEM_ACTOR, MAIN_PLAN, COVID)
        holder, membership = covered_member(ctx, clock)
        claim = report_claim(
            ctx,
            holder,
            ClaimReport(
                membership_id=membership.id,
                illness_code="CI02",
                diagnosed_on=date(2026, 2, 25),
                hospital="浙江大学医学院附属第一医院",
            ),
        )
        assert not claim.sponsored


class TestSponsoredCases:
    def test_a_scheme_case_is_publicised_then_paid_by_the_sponsor_and_never_shared(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        use_rules(ctx)
        attach_scheme(ctx, SYSTEM_ACTOR, MAIN_PLAN, COVID)
        holder, membership = covered_member(ctx, clock)
        others = members(ctx, clock, 3)
        ref = file_under_scheme(ctx, holder, membership.id, date(2026, 2, 25)).ref
        approve_through_publicity(ctx, clock, ref)
        assert get_claim(ctx, holder, ref).state is ClaimState.APPROVED

        march_21 = date(2026, 3, 21)
        period = close_on(ctx, clock, march_21)
        assert (period.case_count, period.share_fen, period.total_charged_fen) == (0, 0, 0)
        assert period.sponsored_aid_fen == 10_000_000 and period.member_count == 4
        notice = period_notice(ctx, MAIN_PLAN, march_21)
        assert notice.cases == []
        assert [(c.ref, c.illness_en, c.payout_fen) for c in notice.sponsored_cases] == [
            (ref, "COVID19-DEATH", 10_000_000)
        ]
        clock.set(datetime(2026, 3, 28, 2, tzinfo=UTC))
        collect_period(ctx, SYSTEM_ACTOR, MAIN_PLAN, march_21, SimulatedProvider())
        paid = pay_approved_claims(ctx, SYSTEM_ACTOR, MAIN_PLAN, march_21)
        assert paid.total_fen == 10_000_000
        with ctx.reading() as session:
            assert unbalanced_transactions(session) == []
            assert balances(session, "operator:")["operator:sponsor"] == -10_000_000
            assert (
                balances(session, f"plan:{MAIN_PLAN}:members").get(f"plan:{MAIN_PLAN}:members", 0)
                == 0
            )
        statement = member_statement(ctx, others[0][0], others[0][1].id)
        assert statement.charged_fen == 0
        assert [(line.charge_fen, line.sponsored_aid_fen) for line in statement.lines] == [
            (0, 10_000_000)
        ]


class TestPeriodSponsorship:
    def test_a_sponsored_period_charges_nobody_and_the_sponsor_pays_the_whole_need(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        use_rules(ctx)
        people = members(ctx, clock, 7)
        approved_claim(ctx, people[0][1].id, 1000, LOCK_MARCH_7 - timedelta(days=3))
        sponsor_periods(
            ctx,
            SYSTEM_ACTOR,
            MAIN_PLAN,
            "period",
            MARCH_7,
            MARCH_7,
            "the first apportionment is on us",
        )
        period = close_on(ctx, clock, MARCH_7)
        # Without the sponsor: 1000 + 80 over 7 = 155 each. With it: nobody pays, it pays 1080.
        assert (period.uncapped_share_fen, period.share_fen, period.total_charged_fen) == (
            155,
            0,
            0,
        )
        assert (period.sponsor_fen, period.surplus_out_fen, period.sponsored_by) == (
            1080,
            0,
            "promotion",
        )
        assert [
            (line.status, line.sponsored_by)
            for line in member_statement(ctx, people[1][0], people[1][1].id).lines
        ] == [("nothing_due", "promotion")]
        assert all(check.holds for check in period_notice(ctx, MAIN_PLAN, MARCH_7).checks)
        # The next period is shared again.
        approved_claim(ctx, people[1][1].id, 1000, datetime(2026, 3, 10, tzinfo=UTC))
        assert close_on(ctx, clock, date(2026, 3, 21)).share_fen == 155
        assert [s.kind for s in list_sponsorships(ctx, MAIN_PLAN)] == ["period"]

    def test_a_cap_excess_sponsorship_overrides_prorating(
        self, ctx: ServiceContext, clock: FixedClock
    ) -> None:
        use_rules(ctx, per_case_fen=10)
        people = members(ctx, clock, 3)
        approved_claim(ctx, people[0][1].id, 10_000, LOCK_MARCH_7 - timedelta(days=1))
        sponsor_periods(ctx, SYSTEM_ACTOR, MAIN_PLAN, "cap_excess", MARCH_7, date(2026, 12, 31))
        period = close_on(ctx, clock, MARCH_7, cap_excess=CapExcess.PRORATE)
        assert (period.cap_excess, period.prorated_fen) == ("sponsor", 0)
        assert period.sponsor_fen == 10_800 - 30

    def test_a_sponsorship_range_must_be_valid(self, ctx: ServiceContext) -> None:
        with pytest.raises(DomainError) as error:
            sponsor_periods(ctx, SYSTEM_ACTOR, MAIN_PLAN, "period", MARCH_7, date(2026, 3, 1))
        assert (error.value.code, error.value.field) == ("invalid_sponsorship", "to_on")
        with pytest.raises(DomainError) as error:
            sponsor_periods(ctx, SYSTEM_ACTOR, MAIN_PLAN, "everything", MARCH_7, MARCH_7)
        assert error.value.code == "invalid_sponsorship"
        assert error.value.field == "kind"
