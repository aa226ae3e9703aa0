"""Closing periods under the proportional and conditional mean sharing rules: the need is split
among the age bands exactly, each band's part is shared evenly by its members (rounded up), and
every balancing check still holds to the fen. Charges below are computed by hand."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from tests.builders.sharing_rules import MEMBERS, OLD, population, two_cases, use_rule
from tests.factories import (
    LOCK_MARCH_7,
    MAIN_PLAN,
    MARCH_7,
    account,
    approved_claim,
    close_on,
    enroll,
    proven_charge,
    publish_demo_plans,
)

from mutualaid.clock import FixedClock
from mutualaid.db.models import PeriodBand
from mutualaid.domain.memberships import MembershipEvent
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.collections.debits import collect_period
from mutualaid.services.collections.files import export_collection_file
from mutualaid.services.collections.providers import SimulatedProvider
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.memberships import MembershipView, change_membership
from mutualaid.services.ledger.ledger import balances, unbalanced_transactions
from mutualaid.services.periods.notice import period_notice
from mutualaid.services.periods.statements import member_statement


@pytest.fixture(autouse=True)
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


def charges(ctx: ServiceContext, people: list[MembershipView]) -> list[int]:
    return [
        line.charge_fen for p in people for line in member_statement(ctx, SYSTEM_ACTOR, p.id).lines
    ]


def capped_population(
    ctx: ServiceContext, clock: FixedClock, annual_fen: int
) -> list[MembershipView]:
    """The population and its two cases under the proportional rule with this annual cap."""
    use_rule(ctx, "proportional", annual_fen=annual_fen)
    people = population(ctx, clock)
    two_cases(ctx, people)
    return people


def test_the_proportional_rule_splits_the_need_by_expected_loss_and_each_band_shares_its_part(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    use_rule(ctx, "proportional")
    people = population(ctx, clock)
    two_cases(ctx, people)
    period = close_on(ctx, clock, MARCH_7)
    # need = 40,000,000 + 8% = 43,200,000. Weights: 3 young × 300 = 900, 2 old × 200 = 400.
    # Young: 43,200,000 × 900 / 1300 = 29,907,692 rem 400; old: 13,292,307 rem 900 -> the
    # leftover fen goes to the old band: 13,292,308. Shares ⌈29,907,692 / 3⌉ = 9,969,231 and
    # ⌈13,292,308 / 2⌉ = 6,646,154; total 29,907,693 + 13,292,308 = 43,200,001, 1 carried.
    assert (period.aid_fen, period.fee_fen, period.member_count) == (40_000_000, 3_200_000, 5)
    assert (period.total_charged_fen, period.surplus_out_fen, period.sponsor_fen) == (
        43_200_001,
        1,
        0,
    )
    assert period.share_fen == 9_969_231  # the largest band share
    assert charges(ctx, people) == [9_969_231] * 3 + [6_646_154] * 2

    notice = period_notice(ctx, MAIN_PLAN, MARCH_7)
    assert notice.sharing_rule == "proportional"
    assert [
        (b.from_age, b.member_count, b.weight, b.band_total_fen, b.share_fen) for b in notice.bands
    ] == [(0, 3, "300/1", 29_907_692, 9_969_231), (40, 2, "200/1", 13_292_308, 6_646_154)]
    assert notice.bands[1].born_by_on == date(1986, 3, 7)
    assert all(check.holds for check in notice.checks), notice.checks
    assert {c.name for c in notice.checks} >= {
        "charges",
        "members",
        "balance",
        "bands",
        "share_0_39",
        "share_40_59",
    }

    lines = member_statement(ctx, SYSTEM_ACTOR, people[3].id).lines
    assert (lines[0].share_fen, lines[0].charge_fen) == (6_646_154, 6_646_154)
    for person in (people[2], people[3]):
        proven_charge(ctx, SYSTEM_ACTOR, person.id, MARCH_7)
    with ctx.reading() as session:
        assert unbalanced_transactions(session) == []
        assert balances(session, MEMBERS)[MEMBERS] == -43_200_001


def test_the_conditional_mean_rule_charges_the_bands_whose_losses_make_the_total(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    use_rule(ctx, "conditional_mean")
    people = population(ctx, clock)
    two_cases(ctx, people)
    period = close_on(ctx, clock, MARCH_7)
    # S = 40,000,000 can only be one young and one old case: E[X_young | S] = 30,000,000 / 3 =
    # 10,000,000 and E[X_old | S] = 10,000,000 / 2 = 5,000,000. Band weights 30,000,000 :
    # 10,000,000 = 3 : 1 of 43,200,000 -> 32,400,000 and 10,800,000, i.e. 10,800,000 and
    # 5,400,000 a member, exactly: nothing carried.
    assert charges(ctx, people) == [10_800_000] * 3 + [5_400_000] * 2
    assert (period.total_charged_fen, period.surplus_out_fen) == (43_200_000, 0)
    notice = period_notice(ctx, MAIN_PLAN, MARCH_7)
    assert [b.weight for b in notice.bands] == ["10000000/1", "5000000/1"]
    assert all(check.holds for check in notice.checks)

    provider = SimulatedProvider()
    clock.set(datetime(2026, 3, 14, 2, 0, tzinfo=UTC))
    run = collect_period(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_7, provider)
    assert (run.collected_fen, run.failed_fen) == (43_200_000, 0)
    assert (
        sorted(amount for _, amount in provider.debits.values())
        == [5_400_000] * 2 + [10_800_000] * 3
    )
    with ctx.reading() as session:
        assert balances(session, MEMBERS)[MEMBERS] == 0
    out = io.BytesIO()
    export_collection_file(ctx, MAIN_PLAN, MARCH_7, out)
    amounts = sorted(int(line.split(",")[2]) for line in out.getvalue().decode().splitlines()[1:])
    assert amounts == [5_400_000] * 2 + [10_800_000] * 3


def test_a_member_suspended_at_the_lock_is_left_out_of_their_band(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    use_rule(ctx, "conditional_mean")
    people = population(ctx, clock)
    two_cases(ctx, people)
    clock.set(LOCK_MARCH_7 - timedelta(hours=2))
    change_membership(ctx, SYSTEM_ACTOR, people[1].id, MembershipEvent.SUSPEND)
    period = close_on(ctx, clock, MARCH_7)
    # Two young members left to share the young band's 32,400,000: 16,200,000 each.
    assert period.member_count == 4
    assert charges(ctx, people) == [16_200_000, 0, 16_200_000, 5_400_000, 5_400_000]
    assert period.total_charged_fen == 43_200_000


def test_a_period_without_a_case_charges_nothing_under_a_banded_rule(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    use_rule(ctx, "proportional")
    population(ctx, clock)
    period = close_on(ctx, clock, MARCH_7)
    assert (period.total_charged_fen, period.share_fen, period.fee_fen) == (0, 0, 0)
    with ctx.reading() as session:
        assert [b.member_count for b in session.scalars(select(PeriodBand))] == [3, 2]


def test_a_uniform_plan_stores_no_bands(ctx: ServiceContext, clock: FixedClock) -> None:
    population(ctx, clock)
    close_on(ctx, clock, MARCH_7)
    with ctx.reading() as session:
        assert session.scalars(select(PeriodBand)).all() == []
    assert period_notice(ctx, MAIN_PLAN, MARCH_7).bands == []


MARCH_21 = date(2026, 3, 21)
LOCK_MARCH_21 = datetime(2026, 3, 20, 16, 0, tzinfo=UTC)


def a_joiner_and_an_old_case_on_march_21(
    ctx: ServiceContext, clock: FixedClock, people: list[MembershipView]
) -> list[MembershipView]:
    """A 46-year-old joins on 10 March (cohort of 21 March) and an old member's 100,000 yuan case
    is approved for the period of 21 March. On 21 March people[2] is 40: the old band."""
    clock.set(datetime(2026, 3, 10, 2, 0, tzinfo=UTC))
    joiner = enroll(ctx, account(ctx), date(1980, 1, 1))
    approved_claim(ctx, people[3].id, OLD, LOCK_MARCH_21 - timedelta(days=1))
    return [*people, joiner]


def group_table(ctx: ServiceContext, on: date) -> list[tuple[date, int, int, int, int]]:
    return [
        (g.cohort_on, g.band_index, g.member_count, g.charged_so_far_this_year_fen, g.charge_fen)
        for g in period_notice(ctx, MAIN_PLAN, on).groups
    ]


def test_the_annual_cap_binds_per_band_and_a_member_who_changed_band_pays_by_their_own_year(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    people = capped_population(ctx, clock, 12_000_000)
    close_on(ctx, clock, MARCH_7)  # 9,969,231 a young member, 6,646,154 an old one, 1 carried
    people = a_joiner_and_an_old_case_on_march_21(ctx, clock, people)
    period = close_on(ctx, clock, MARCH_21)
    # need = 10,000,000 + 800,000 − 1 = 10,799,999. Young: 2 × 300 = 600, old: 4 × 200 = 800, of
    # 1,400: 4,628,571 and 6,171,428 (both exact), shares ⌈/2⌉ = 2,314,286 and ⌈/4⌉ = 1,542,857.
    # The young (9,969,231 so far) have 2,030,769 left under the cap: they pay that. people[2],
    # young on 7 March and old now, has paid 9,969,231 too but owes only 1,542,857: in full.
    assert charges(ctx, people[:2]) == [9_969_231, 2_030_769] * 2
    assert [
        line.charge_fen for line in member_statement(ctx, SYSTEM_ACTOR, people[2].id).lines
    ] == [9_969_231, 1_542_857]
    assert charges(ctx, people[3:5]) == [6_646_154, 1_542_857] * 2
    assert charges(ctx, people[5:]) == [1_542_857]
    # total 2 × 2,030,769 + 4 × 1,542,857 = 10,232,966; the sponsor pays the 567,033 left.
    assert (period.total_charged_fen, period.sponsor_fen, period.surplus_out_fen) == (
        10_232_966,
        567_033,
        0,
    )
    assert period.capped_fen == 2 * 2_314_286 + 4 * 1_542_857 - 10_232_966
    assert [
        (line.share_fen, line.charge_fen)
        for line in member_statement(ctx, SYSTEM_ACTOR, people[0].id).lines
    ][1] == (2_314_286, 2_030_769)

    notice = period_notice(ctx, MAIN_PLAN, MARCH_21)
    assert all(check.holds for check in notice.checks), notice.checks
    assert "groups" in {check.name for check in notice.checks}
    # Cohort 7 March: the young (born after 1986-03-21), people[2] (born in (1986-03-07,
    # 1986-03-21]: young then, old now) and the old; cohort 21 March: the joiner.
    assert group_table(ctx, MARCH_21) == [
        (MARCH_7, 1, 2, 6_646_154, 1_542_857),
        (MARCH_7, 1, 1, 9_969_231, 1_542_857),
        (MARCH_7, 0, 2, 9_969_231, 2_030_769),
        (MARCH_21, 1, 1, 0, 1_542_857),
    ]
    for person in people:
        proven_charge(ctx, SYSTEM_ACTOR, person.id, MARCH_21)
    provider = SimulatedProvider()
    clock.set(datetime(2026, 3, 28, 2, 0, tzinfo=UTC))
    run = collect_period(ctx, SYSTEM_ACTOR, MAIN_PLAN, MARCH_21, provider)
    assert (run.collected_fen, run.failed_fen) == (10_232_966, 0)
    with ctx.reading() as session:
        assert unbalanced_transactions(session) == []


def test_a_member_excluded_earlier_in_the_year_pays_by_their_own_year_not_their_group_s(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    people = capped_population(ctx, clock, 14_000_000)
    clock.set(LOCK_MARCH_7 - timedelta(hours=2))
    change_membership(ctx, SYSTEM_ACTOR, people[1].id, MembershipEvent.SUSPEND)
    close_on(ctx, clock, MARCH_7)
    # 7 March without people[1]: young 2 × 300, old 2 × 200 of 43,200,000: 25,920,000 and
    # 17,280,000, i.e. 12,960,000 and 8,640,000 a member (under the cap of 14,000,000).
    clock.set(datetime(2026, 3, 8, 2, 0, tzinfo=UTC))
    change_membership(ctx, SYSTEM_ACTOR, people[1].id, MembershipEvent.REINSTATE)
    people = a_joiner_and_an_old_case_on_march_21(ctx, clock, people)
    period = close_on(ctx, clock, MARCH_21)
    # need 10,800,000 split 600 : 800 -> 4,628,571 rem 600 and 6,171,428 rem 800: the last fen
    # goes to the old band (6,171,429). Shares 2,314,286 and ⌈6,171,429 / 4⌉ = 1,542,858.
    # people[0] and people[2] have paid 12,960,000: 1,040,000 left each. people[1] has paid
    # nothing this year: the full 2,314,286 (a charge of its own). The old: 1,542,858.
    assert [
        lines[-1].charge_fen
        for lines in (member_statement(ctx, SYSTEM_ACTOR, p.id).lines for p in people)
    ] == [1_040_000, 2_314_286, 1_040_000, 1_542_858, 1_542_858, 1_542_858]
    assert (period.total_charged_fen, period.sponsor_fen) == (9_022_860, 10_800_000 - 9_022_860)
    notice = period_notice(ctx, MAIN_PLAN, MARCH_21)
    assert (notice.own_charges, notice.own_charges_fen) == (1, 2_314_286)
    assert all(check.holds for check in notice.checks), notice.checks
    assert sum(g.member_count for g in notice.groups) == 5
    for person in people[:3]:
        proven_charge(ctx, SYSTEM_ACTOR, person.id, MARCH_21)
    with ctx.reading() as session:
        assert balances(session, MEMBERS)[MEMBERS] == -(43_200_000 + 9_022_860)


def test_a_banded_period_under_the_cap_stores_no_groups(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    people = capped_population(ctx, clock, 10_000_000)  # above the largest share, 9,969,231
    close_on(ctx, clock, MARCH_7)
    assert period_notice(ctx, MAIN_PLAN, MARCH_7).groups == []
    assert charges(ctx, people) == [9_969_231] * 3 + [6_646_154] * 2


@pytest.mark.parametrize(
    ("rule", "weights", "totals", "shares", "fairness"),
    [
        # Var X: young 30,000,000² / 100,000 − 300² = 8,999,910,000; old 1,999,960,000; Var S =
        # 30,999,650,000, E[S] = 1,300. h = μ + Var X / Var S × (40,000,000 − 1,300).
        (
            "linear_covariance",
            ["7199880000240/619993", "1600039999640/619993"],
            (37_625_604, 5_574_396),
            (12_541_868, 2_787_198),
            (12_581, 4_194),
        ),
        # h = μ + (40,000,000 − 1,300) / 5: 8,000,040 and 7,999,940.
        (
            "linear_uniform",
            ["8000040/1", "7999940/1"],
            (25_920_130, 17_279_870),
            (8_640_044, 8_639_935),
            (8_667, 13_000),
        ),
        # h_a = 40,000,000 / 5 + (μ_a − 260) × Σ_b S_b μ_b/σ_b² / Q, S = (30,000,000, 10,000,000)
        # by the claimants' bands, Q = Σ n_b μ_b²/σ_b².
        (
            "compensation",
            ["639990800000/69999", "146664600000/23333"],
            (29_622_854, 13_577_146),
            (9_874_285, 6_788_573),
            (9_905, 10_214),
        ),
    ],
)
def test_the_linear_and_compensation_rules_split_the_need_exactly_with_each_band_s_fairness(
    ctx: ServiceContext,
    clock: FixedClock,
    rule: str,
    weights: list[str],
    totals: tuple[int, int],
    shares: tuple[int, int],
    fairness: tuple[int, int],
) -> None:
    use_rule(ctx, rule)
    people = population(ctx, clock)
    two_cases(ctx, people)
    period = close_on(ctx, clock, MARCH_7)
    assert sum(totals) == 43_200_000
    assert charges(ctx, people) == [shares[0]] * 3 + [shares[1]] * 2
    assert period.total_charged_fen == 3 * shares[0] + 2 * shares[1]
    assert period.surplus_out_fen == period.total_charged_fen - 43_200_000
    notice = period_notice(ctx, MAIN_PLAN, MARCH_7)
    assert notice.sharing_rule == rule
    assert [
        (b.weight, b.band_total_fen, b.share_fen, b.fairness_ratio_bp) for b in notice.bands
    ] == [(w, t, s, f) for w, t, s, f in zip(weights, totals, shares, fairness, strict=True)]
    assert all(check.holds for check in notice.checks), notice.checks


def test_the_proportional_rule_is_fair_to_each_band_to_the_basis_point(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    use_rule(ctx, "proportional")
    two_cases(ctx, population(ctx, clock))
    close_on(ctx, clock, MARCH_7)
    notice = period_notice(ctx, MAIN_PLAN, MARCH_7)
    assert [b.fairness_ratio_bp for b in notice.bands] == [10_000, 10_000]
