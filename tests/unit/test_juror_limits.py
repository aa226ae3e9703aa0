"""`juror_limits` states `juror_refusal`'s age and seniority tests as date bounds, exactly."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from mutualaid.domain.calendars import age_in_years
from mutualaid.domain.juries import juror_limits
from mutualaid.domain.plans import JuryRules

days = st.dates(min_value=date(1930, 1, 1), max_value=date(2100, 12, 31))
leap_days = st.integers(1932, 2096).filter(lambda y: y % 4 == 0).map(lambda y: date(y, 2, 29))


@given(
    today=days | leap_days,
    min_age=st.integers(0, 30),
    min_days=st.integers(0, 400),
    birth_offset=st.integers(-3, 3),
    birth_on=days | leap_days,
    joined_offset=st.integers(-3, 3),
)
def test_the_bounds_are_the_age_and_seniority_rules(
    today: date,
    min_age: int,
    min_days: int,
    birth_offset: int,
    birth_on: date,
    joined_offset: int,
) -> None:
    rules = JuryRules(juror_min_age_years=min_age, juror_min_membership_days=min_days)
    limits = juror_limits(rules, today)
    # Births a few days either side of the bound, and anywhere (29 February included).
    for born in (limits.latest_birth_on + timedelta(days=birth_offset), birth_on):
        assert (born <= limits.latest_birth_on) == (age_in_years(born, today) >= min_age)
    joined = limits.joined_by_on + timedelta(days=joined_offset)
    assert (joined <= limits.joined_by_on) == ((today - joined).days >= min_days)


def test_on_29_february_someone_born_on_29_february_has_their_birthday() -> None:
    rules = JuryRules(juror_min_age_years=20, juror_min_membership_days=30)
    assert juror_limits(rules, date(2024, 2, 29)).latest_birth_on == date(2004, 2, 29)
    assert juror_limits(rules, date(2025, 2, 28)).latest_birth_on == date(2005, 2, 28)
