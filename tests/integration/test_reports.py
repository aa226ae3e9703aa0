"""Operator reports over a small plan whose every flow, case, objection, jury and investigation is
known, so that each figure can be checked exactly (SQLite and PostgreSQL)."""

from __future__ import annotations

import math
from collections import Counter
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from tests.builders.reports import (
    Plan,
    build_population,
)
from tests.factories import account
from tests.refusals import refused

from mutualaid.clock import FixedClock
from mutualaid.db.models import (
    Membership,
)
from mutualaid.domain.accounts import Role
from mutualaid.domain.errors import DomainError, Forbidden
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.context import ServiceContext
from mutualaid.services.reports.reports import MembershipMonth, Section, nearest_rank, plan_report


@pytest.fixture
def plan(ctx: ServiceContext, clock: FixedClock) -> Plan:
    return build_population(ctx, clock)


def report_2026(ctx: ServiceContext, *sections: Section):  # type: ignore[no-untyped-def]
    return plan_report(
        ctx,
        SYSTEM_ACTOR,
        "xhb-main",
        from_on=date(2026, 1, 1),
        to_on=date(2026, 3, 1),
        sections=sections or list(Section),
    )


def test_membership_flows_count_joins_leavers_and_suspensions_per_month_in_the_plans_zone(
    ctx: ServiceContext, plan: Plan
) -> None:
    report = report_2026(ctx, Section.MEMBERSHIP)
    assert report.membership == [
        MembershipMonth("2026-01", joined=3, left=0, ended=0, suspended=0, net=3, active_at_end=4),
        MembershipMonth("2026-02", joined=2, left=1, ended=1, suspended=1, net=0, active_at_end=4),
        MembershipMonth("2026-03", joined=0, left=0, ended=0, suspended=0, net=0, active_at_end=4),
    ]
    everything = plan_report(
        ctx, SYSTEM_ACTOR, "xhb-main", to_on=date(2026, 3, 1), sections=[Section.MEMBERSHIP]
    )
    assert everything.membership is not None
    assert everything.membership[0] == MembershipMonth("2025-12", 1, 0, 0, 0, 1, 1)
    assert report.cases_by_illness is None  # only the sections asked for are computed


def test_cases_are_counted_by_illness_age_band_and_province_with_approved_aid_only(
    ctx: ServiceContext, plan: Plan
) -> None:
    report = report_2026(ctx, Section.CASES)
    assert [
        (g.key, g.name_en, g.cases, g.approved, g.payout_fen) for g in report.cases_by_illness or []
    ] == [
        ("CI01", "Malignant tumour (severe)", 3, 1, 30_000_000),
        ("MI01", report.cases_by_illness[1].name_en, 1, 1, 5_000_000),  # type: ignore[index]
    ]
    assert [(g.key, g.cases, g.approved, g.payout_fen) for g in report.cases_by_age_band or []] == [
        ("30-39", 2, 2, 35_000_000),
        ("40-49", 1, 0, 0),
        ("50-59", 1, 0, 0),
    ]
    assert [
        (g.key, g.name_zh, g.cases, g.approved, g.payout_fen)
        for g in report.cases_by_province or []
    ] == [("11", "北京", 2, 1, 5_000_000), ("33", "浙江", 2, 1, 30_000_000)]


def test_share_history_lists_each_period_in_the_window_in_order(
    ctx: ServiceContext, plan: Plan
) -> None:
    shares = report_2026(ctx, Section.SHARES).shares or []
    assert [
        (p.publicity_on, p.members_charged, p.share_per_member_fen, p.aid_fen, p.fee_fen)
        for p in shares
    ] == [(date(2026, 1, 7), 4, 810, 3_000, 240), (date(2026, 2, 7), 5, 2_160, 10_000, 800)]


def test_time_to_decision_gives_the_median_and_90th_percentile_per_month_and_overall(
    ctx: ServiceContext, plan: Plan
) -> None:
    times = report_2026(ctx, Section.DECISIONS).decision_times or []
    # January: 5, 10 and 16 days; February: 2.5 days (60 hours).
    assert [(t.month, t.decided, t.median_days, t.p90_days) for t in times] == [
        ("2026-01", 3, 10.0, 16.0),
        ("2026-02", 1, 2.5, 2.5),
        ("all", 4, 5.0, 16.0),
    ]


def test_nearest_rank_percentiles_of_a_histogram() -> None:
    histogram = [(1, 5), (2, 4), (10, 1)]
    assert [nearest_rank(histogram, p) for p in (1, 50, 90, 91, 100)] == [1, 1, 2, 10, 10]
    assert nearest_rank([], 50) is None


@given(st.lists(st.integers(0, 5_000), min_size=1, max_size=200), st.integers(1, 100))
def test_a_histograms_percentile_is_the_sorted_values_nearest_rank(
    values: list[int], percent: int
) -> None:
    histogram = sorted(Counter(values).items())
    ordered = sorted(values)
    assert nearest_rank(histogram, percent) == ordered[math.ceil(len(values) * percent / 100) - 1]


def test_the_three_case_groupings_add_up_to_the_same_totals(
    ctx: ServiceContext, plan: Plan
) -> None:
    report = report_2026(ctx, Section.CASES)
    totals = {
        (
            sum(g.cases for g in groups),
            sum(g.approved for g in groups),
            sum(g.payout_fen for g in groups),
        )
        for groups in (
            report.cases_by_illness or [],
            report.cases_by_age_band or [],
            report.cases_by_province or [],
        )
    }
    assert totals == {(4, 2, 35_000_000)}


def test_active_members_at_the_end_match_a_direct_count(ctx: ServiceContext, plan: Plan) -> None:
    months = report_2026(ctx, Section.MEMBERSHIP).membership or []
    with ctx.reading() as session:
        active = session.scalar(
            select(func.count()).select_from(Membership).where(Membership.ended_at.is_(None))
        )
    assert months[-1].active_at_end == active == 4


def test_objection_and_upheld_rates(ctx: ServiceContext, plan: Plan) -> None:
    stats = report_2026(ctx, Section.OBJECTIONS).objections
    assert stats is not None
    assert (stats.published_cases, stats.objected_cases, stats.objections) == (3, 2, 3)
    assert (stats.upheld, stats.dismissed, stats.pending) == (1, 1, 1)
    assert (stats.objection_rate, stats.upheld_rate) == (0.6667, 0.5)


def test_jury_referrals_and_overturns_are_read_from_each_claims_transitions(
    ctx: ServiceContext, plan: Plan
) -> None:
    juries = report_2026(ctx, Section.JURIES).juries
    assert juries is not None
    assert (juries.decided_claims, juries.referred_claims) == (4, 3)
    assert (
        juries.referred_after_rejection,
        juries.referred_from_publicity,
        juries.referred_by_staff,
    ) == (2, 0, 1)
    assert (
        juries.verdicts,
        juries.approved_by_jury,
        juries.rejected_by_jury,
        juries.inconclusive,
    ) == (2, 1, 1, 1)
    assert (juries.overturned, juries.referral_rate, juries.overturn_rate) == (1, 0.75, 0.5)


def test_investigation_cost_per_investigated_case(ctx: ServiceContext, plan: Plan) -> None:
    stats = report_2026(ctx, Section.INVESTIGATIONS).investigations
    assert stats is not None
    assert (stats.investigated_cases, stats.reports, stats.cost_fen) == (3, 4, 37_345)
    assert (stats.reports_per_case, stats.cost_per_case_fen) == (1.3333, 12_448)


def test_fairness_compares_each_age_bands_contribution_with_its_benefit_under_each_rule(
    ctx: ServiceContext, plan: Plan
) -> None:
    fairness = report_2026(ctx, Section.FAIRNESS).fairness
    assert fairness is not None and fairness.source == "model"
    assert (fairness.fee_bp, fairness.plan_rule) == (800, "uniform")
    # On 1 March 2026: born 1990 (35), 1978 (47), 1970 (55), 2010 (15); two have gone.
    members = {b.band: b.members for b in fairness.bands if b.members}
    assert members == {"15-19": 1, "35-39": 1, "45-49": 1, "55-59": 1}
    by_band = {b.band: b for b in fairness.bands}
    for band in fairness.bands:
        assert band.ratio["proportional"] == band.ratio["conditional_mean"] == 1.0
    # Under the uniform rule, everyone pays the same: the young pay for the old.
    uniform = {b.contribution_fen["uniform"] for b in fairness.bands}
    assert len(uniform) == 1
    assert by_band["15-19"].ratio["uniform"] > 1 > by_band["55-59"].ratio["uniform"]  # type: ignore[operator]
    # The proportional rule collects what the uniform one does, spread by expected aid.
    total = sum(b.members * b.contribution_fen["proportional"] for b in fairness.bands)
    assert abs(total - 4 * uniform.pop()) <= 4


def test_fairness_uses_the_plans_own_history_once_it_has_enough_cases(
    ctx: ServiceContext, plan: Plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mutualaid.services.reports.fairness as fairness_module

    monkeypatch.setattr(fairness_module, "MIN_HISTORY_CASES", 3)
    fairness = report_2026(ctx, Section.FAIRNESS).fairness
    assert fairness is not None
    # Approved, unsponsored: c1 (35, severe), c3 (38, mild), c7 (35, severe), c8 (35, severe).
    assert (fairness.source, fairness.history_cases) == ("history", 4)
    # Exposure: (2,390 + 1 + 4 + 5) member-periods at 24 a year = 100 member-years, of which the
    # 35-39 band (1 of 4 members today) holds 25: severe 3/25 a year × 300,000 yuan, mild 1/25 ×
    # 50,000 yuan.
    by_band = {b.band: b for b in fairness.bands}
    assert by_band["35-39"].benefit_fen == 3 * 30_000_000 // 25 + 5_000_000 // 25
    assert by_band["15-19"].benefit_fen == 0 and by_band["15-19"].ratio["uniform"] is None


def test_only_the_operators_desk_reads_reports_and_a_backwards_window_is_refused(
    ctx: ServiceContext, plan: Plan
) -> None:
    auditor = account(ctx, Role.AUDITOR)
    assert plan_report(ctx, auditor, "xhb-main", sections=[Section.SHARES]).shares is not None
    with refused("forbidden", Forbidden):
        plan_report(ctx, account(ctx, Role.REVIEWER), "xhb-main")
    with pytest.raises(DomainError) as caught:
        plan_report(ctx, auditor, "xhb-main", from_on=date(2026, 3, 2), to_on=date(2026, 3, 1))
    assert (caught.value.code, caught.value.field) == ("invalid_window", "from_on")
