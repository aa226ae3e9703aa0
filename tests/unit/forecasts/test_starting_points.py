"""A forecast of a live plan starts from its members, its experience and its money today."""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
from tests.unit.forecasts.builders import main_plan, small_model

from mutualaid.domain.plans import parse_plan_toml
from mutualaid.forecasts.models import default_model
from mutualaid.forecasts.simulation import SimulationSettings, simulate
from mutualaid.forecasts.starting_points import (
    PRIOR_EVENTS,
    MemberGroup,
    PlanToday,
    entry_age_mix,
    gamma_range,
    live_model,
    starting_point,
)
from mutualaid.plan_files import read_plan_file

TODAY = date(2026, 3, 1)


def plan_today(
    members: int = 100_000, *, cases: int = 0, leavers: int = 0, joiners: int = 0
) -> PlanToday:
    """Members who joined in January 2025 (covered), aged 30 and 45, half of them women."""
    groups = tuple(
        MemberGroup(date(2025, 1, 1), sex, born, members // 4)
        for sex in ("M", "F")
        for born in (1996, 1981)
    )
    recent = (MemberGroup(date(2026, 2, 1), "F", 1996, joiners),) if joiners else ()
    return PlanToday(
        today=TODAY,
        members=groups,
        recent_joiners=recent,
        window_days=365,
        observed_cases=cases,
        observed_leavers=leavers,
        surplus_fen=0,
    )


def run(state: PlanToday, *, periods: int = 6, scenarios: int = 40):  # type: ignore[no-untyped-def]
    rules = main_plan()
    base = default_model()
    settings = SimulationSettings(
        periods=periods,
        scenarios=scenarios,
        seed=3,
        start=starting_point(base, state, rules),
        start_on=state.today,
    )
    return simulate(rules, live_model(base, state, rules), settings)


def test_a_live_plan_starts_with_its_members_and_no_launch_ramp() -> None:
    result = run(plan_today(100_000))
    first = result["members"][:, 0]
    # Its own members, less a few leavers, and no Xiang Hu Bao joiners.
    assert (first <= 100_000).all() and (first > 99_000).all()
    assert result["joins"].sum() == 0
    assert result.setup.publicity_on[0] == date(2026, 3, 7)


def test_joining_goes_on_at_the_pace_of_the_last_year() -> None:
    result = run(plan_today(100_000, joiners=36_525), periods=24)
    # 100 joiners a day for about a year.
    assert 33_000 < result["joins"][0].sum() < 40_000


def test_a_plan_that_saw_more_claims_than_the_model_forecasts_more_cases() -> None:
    base = default_model()
    rules = main_plan()
    quiet = plan_today(1_000_000, cases=0)
    expected = starting_point(base, quiet, rules).incidence
    assert expected is not None
    busy = plan_today(1_000_000, cases=int(3 * (expected.rate - PRIOR_EVENTS)))
    assert starting_point(base, busy, rules).incidence.mean > 2.5  # type: ignore[union-attr]
    calm, hot = run(quiet, periods=12), run(busy, periods=12)
    assert np.median(hot["diagnosed"].sum(axis=1)) > 2 * np.median(calm["diagnosed"].sum(axis=1))


def test_a_young_plan_keeps_the_model_with_a_wide_band_and_a_large_one_its_own_experience() -> None:
    base, rules = default_model(), main_plan()
    young = starting_point(base, plan_today(1_000), rules).incidence
    large = starting_point(base, plan_today(10_000_000, cases=5_000), rules).incidence
    assert young is not None and large is not None
    young_low, young_high = gamma_range(young)
    large_low, large_high = gamma_range(large)
    assert young_low < 0.5 < 1.5 < young_high
    assert large_high - large_low < 0.1 * (young_high - young_low)


def test_members_who_reached_the_annual_cap_this_year_pay_nothing_more_until_january() -> None:
    rules = main_plan(lambda text: text.replace("annual_fen = 18_800", "annual_fen = 500"))
    state = plan_today(2_000_000)
    capped = dataclasses.replace(state, shares_this_year=((date(2026, 1, 7), 500),))
    base = default_model()
    settings = SimulationSettings(
        periods=8, scenarios=5, seed=1, start=starting_point(base, capped, rules), start_on=TODAY
    )
    result = simulate(rules, live_model(base, capped, rules), settings)
    assert result["aid_fen"].sum() > 0
    assert result["charged_fen"].sum() == 0
    assert (result["sponsor_fen"].sum(axis=1) >= result["aid_fen"].sum(axis=1)).all()


def test_the_elderly_plan_is_forecast_from_its_launch_with_joiners_at_its_entry_ages() -> None:
    elderly = parse_plan_toml(read_plan_file("xhb-elderly-cancer.toml"))
    model = entry_age_mix(small_model(50_000), elderly)
    result = simulate(elderly, model, SimulationSettings(periods=12, scenarios=3, seed=1))
    assert result["members"][:, -1].min() > 40_000
    assert result["cases"].sum() > 0
