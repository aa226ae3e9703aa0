"""Where a forecast starts: Xiang Hu Bao's launch (an empty plan and the calibrated join ramp), or
a live plan as it stands today.

A live plan's members are grouped by joining month, sex and age (never a row per member), its
observed claims and leavers set how far the model's rates are trusted, and its surplus carries
into the first period. The observed rates enter with their uncertainty: each scenario draws its
own multiplier of the model's incidence (and of its base leaving rate) from the Gamma posterior of
a Poisson count, with the model as a prior worth `PRIOR_EVENTS` events:

    multiplier ~ Gamma(shape = PRIOR_EVENTS + observed, rate = PRIOR_EVENTS + expected)

so a young plan with a handful of cases follows the model with a wide band, and a large plan
follows its own experience with a narrow one (Bühlmann-style credibility; Klugman, Panjer and
Willmot, *Loss Models*, ch. 17–18). Pure: the database read is `services.forecasts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np

from mutualaid.domain.plans import PlanRules
from mutualaid.forecasts.models import AgeWeight, ForecastModel, Joins

#: How many events' worth of weight the model's own rates get against the plan's experience.
PRIOR_EVENTS = 5.0
DAYS_PER_YEAR = 365.25


@dataclass(frozen=True, slots=True)
class Multiplier:
    """A rate multiplier drawn per scenario: Gamma(shape, rate), mean shape / rate."""

    shape: float
    rate: float

    @property
    def mean(self) -> float:
        return self.shape / self.rate


#: The 95th percentile of the standard normal.
_Z95 = 1.6448536269514722


def gamma_range(multiplier: Multiplier) -> tuple[float, float]:
    """The multiplier's 5th and 95th percentiles, by the Wilson–Hilferty cube-root approximation
    (within 1 % of the exact quantiles for shape ≥ 5, which `PRIOR_EVENTS` guarantees)."""
    spread = 1 / (9 * multiplier.shape)

    def quantile(z: float) -> float:
        return multiplier.mean * float(max(1 - spread + z * spread**0.5, 0.0) ** 3)

    return quantile(-_Z95), quantile(_Z95)


@dataclass(frozen=True, slots=True)
class JoiningCohort:
    """Members who joined `joined_days_ago` days before the start, who have paid `ytd_fen` in
    shares this calendar year; `members` is ``(sex 0 male / 1 female, age in years at the start,
    count)``."""

    joined_days_ago: int
    ytd_fen: int
    members: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True, slots=True)
class StartingPoint:
    """A plan's population and money on the start day; empty for a plan yet to launch."""

    cohorts: tuple[JoiningCohort, ...] = ()
    surplus_fen: int = 0
    incidence: Multiplier | None = None
    leaving: Multiplier | None = None


@dataclass(frozen=True, slots=True)
class MemberGroup:
    """Active members of a plan who joined in one month, by sex and birth year (a database row)."""

    joined_month: date  # the first day of the joining month
    sex: str  # "M" or "F"
    birth_year: int
    count: int


@dataclass(frozen=True, slots=True)
class PlanToday:
    """What the database says about a plan today (`services.forecasts.plan_today`)."""

    today: date
    members: tuple[MemberGroup, ...]
    #: Joiners of the last `window_days` days, by sex and birth year (joined_month unused).
    recent_joiners: tuple[MemberGroup, ...]
    window_days: int
    #: Approved cases and members who left during the window.
    observed_cases: int
    observed_leavers: int
    surplus_fen: int
    #: This calendar year's closed periods: (publicity day, share per member in fen).
    shares_this_year: tuple[tuple[date, int], ...] = field(default_factory=tuple)

    @property
    def member_count(self) -> int:
        return sum(group.count for group in self.members)


def _age_on(birth_year: int, day: date) -> int:
    # Birth years, not birthdays: the groups stay few (ages are right to within a year).
    return max(day.year - birth_year, 0)


def _mid_month_days_ago(month: date, today: date) -> int:
    return max((today - month).days - 15, 0)


def expected_cases(model: ForecastModel, plan: PlanToday, rules: PlanRules) -> float:
    """Cases the model expects among today's members over the window (mature rates times the
    health-declaration factor at each group's tenure)."""
    years = plan.window_days / DAYS_PER_YEAR
    total = 0.0
    for group in plan.members:
        age = _age_on(group.birth_year, plan.today)
        row = next((r for r in model.incidence if r.from_age <= age <= r.to_age), None)
        if row is None:
            continue
        sex = 0 if group.sex == "M" else 1
        rate = (row.severe[sex] + row.mild[sex]) / 100_000 * model.incidence_level
        tenure = _mid_month_days_ago(group.joined_month, plan.today) / DAYS_PER_YEAR
        covered_years = min(years, max(tenure - rules.waiting_period.days / DAYS_PER_YEAR, 0.0))
        total += group.count * rate * _selection(model, tenure) * covered_years
    return total


def _selection(model: ForecastModel, years: float) -> float:
    years_at, factors = zip(*model.selection.knots, strict=True)
    return float(np.interp(years, years_at, factors))


def expected_leavers(model: ForecastModel, plan: PlanToday, periods_per_year: int) -> float:
    """Members the model's base leaving rate (no charge effect) expects to leave over the window."""
    periods = plan.window_days / DAYS_PER_YEAR * periods_per_year
    total = 0.0
    for group in plan.members:
        age = _age_on(group.birth_year, plan.today)
        row = next((r for r in model.churn.bands if r.from_age <= age <= r.to_age), None)
        if row is not None:
            total += group.count * row.base_per_period * periods
    return total


def _ytd_fen(joined_days_ago: int, plan: PlanToday) -> int:
    """Shares a member of this cohort has paid this year: every closed period since joining
    (the uniform rule's figure; banded rules differ by band)."""
    joined_on = plan.today.toordinal() - joined_days_ago
    return sum(share for day, share in plan.shares_this_year if day.toordinal() > joined_on)


def starting_point(model: ForecastModel, plan: PlanToday, rules: PlanRules) -> StartingPoint:
    by_cohort: dict[int, list[tuple[int, int, int]]] = {}
    for group in plan.members:
        days_ago = _mid_month_days_ago(group.joined_month, plan.today)
        sex = 0 if group.sex == "M" else 1
        by_cohort.setdefault(days_ago, []).append(
            (sex, _age_on(group.birth_year, plan.today), group.count)
        )
    cohorts = tuple(
        JoiningCohort(days_ago, _ytd_fen(days_ago, plan), tuple(sorted(members)))
        for days_ago, members in sorted(by_cohort.items(), reverse=True)
    )
    periods_per_year = 12 * len(rules.periods.publicity_days)
    incidence = Multiplier(
        PRIOR_EVENTS + plan.observed_cases, PRIOR_EVENTS + expected_cases(model, plan, rules)
    )
    leaving = Multiplier(
        PRIOR_EVENTS + plan.observed_leavers,
        PRIOR_EVENTS + expected_leavers(model, plan, periods_per_year),
    )
    return StartingPoint(cohorts, plan.surplus_fen, incidence, leaving)


def live_joins(model: ForecastModel, plan: PlanToday, rules: PlanRules) -> Joins:
    """Joining goes on at the window's pace, with the recent joiners' sex and age mix (or, with
    no recent joiner, evenly over the plan's entry ages)."""
    joined = sum(group.count for group in plan.recent_joiners)
    per_day = joined / max(plan.window_days, 1)
    horizon = 20 * DAYS_PER_YEAR  # flat after the last knot; longer than any forecast
    by_age: dict[int, int] = {}
    men = 0
    for group in plan.recent_joiners:
        age = _age_on(group.birth_year, plan.today)
        by_age[age] = by_age.get(age, 0) + group.count
        men += group.count if group.sex == "M" else 0
    low, high = rules.entry.min_age_years, rules.entry.max_age_years
    mix = [
        AgeWeight(from_age=age, to_age=age, weight=float(by_age.get(age, 0)))
        for age in range(low, high + 1)
    ]
    if not any(weight.weight for weight in mix):
        mix = [AgeWeight(from_age=low, to_age=high, weight=1.0)]
    return replace(
        model.joins,
        start_on=plan.today,
        cumulative=[(0.0, 0.0), (horizon, per_day * horizon)],
        male_share=men / joined if joined else model.joins.male_share,
        age_mix=mix,
    )


def live_model(model: ForecastModel, plan: PlanToday, rules: PlanRules) -> ForecastModel:
    return replace(model, joins=live_joins(model, plan, rules))


def entry_age_mix(model: ForecastModel, rules: PlanRules) -> ForecastModel:
    """The model as is when its joiners' age mix covers the plan's entry ages; otherwise joiners
    spread evenly over them (the Xiang Hu Bao ramp is of a plan for 0–59-year-olds: an elderly
    plan's entry ages get no weight from it)."""
    low, high = rules.entry.min_age_years, rules.entry.max_age_years
    if not model.joins.age_mix or any(
        row.weight and row.to_age >= low and row.from_age <= high for row in model.joins.age_mix
    ):
        return model
    even = [AgeWeight(from_age=low, to_age=high, weight=1.0)]
    return replace(model, joins=replace(model.joins, age_mix=even))
