from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mutualaid.domain.calendars import age_in_years, anniversary
from mutualaid.domain.errors import DomainError
from mutualaid.domain.identities import ResidentId, Sex
from mutualaid.domain.memberships import (
    TRANSITIONS,
    MembershipEvent,
    MembershipState,
    coverage_dates,
    enrollment_refusals,
    is_illness_covered,
    refuse_if_any,
    state_on,
    transition,
)
from mutualaid.domain.plans import parse_plan_toml
from mutualaid.plan_files import read_plan_file

RULES = parse_plan_toml(read_plan_file("xhb-main.toml"))
ELDERLY = parse_plan_toml(read_plan_file("xhb-elderly-cancer.toml"))
HEALTHY = {q.code: False for q in RULES.health_questions}
JOINED = date(2026, 3, 1)


def person(birth_on: date) -> ResidentId:
    return ResidentId(number="x", birth_on=birth_on, sex=Sex.FEMALE, province_code="33")


def test_waiting_period_day_90_is_still_waiting_and_day_91_is_covered() -> None:
    dates = coverage_dates(RULES, JOINED, date(1990, 1, 1))
    day_90 = JOINED + timedelta(days=90)
    assert dates.waiting_ends_on == day_90
    assert state_on(dates, MembershipState.WAITING, day_90) is MembershipState.WAITING
    assert (
        state_on(dates, MembershipState.WAITING, day_90 + timedelta(days=1))
        is MembershipState.COVERED
    )


def test_during_the_waiting_period_only_accidents_qualify() -> None:
    dates = coverage_dates(RULES, JOINED, date(1990, 1, 1))
    day_90 = JOINED + timedelta(days=90)
    assert not is_illness_covered(
        dates, MembershipState.WAITING, day_90, accident=False, rules=RULES
    )
    assert is_illness_covered(dates, MembershipState.WAITING, day_90, accident=True, rules=RULES)
    assert is_illness_covered(
        dates, MembershipState.WAITING, day_90 + timedelta(days=1), accident=False, rules=RULES
    )


def test_a_plan_without_accident_cover_in_waiting_covers_nothing_then() -> None:
    dates = coverage_dates(ELDERLY, JOINED, date(1960, 1, 1))
    assert not is_illness_covered(
        dates, MembershipState.WAITING, JOINED + timedelta(days=5), accident=True, rules=ELDERLY
    )


def test_illness_before_joining_is_not_covered() -> None:
    dates = coverage_dates(RULES, JOINED, date(1990, 1, 1))
    assert not is_illness_covered(
        dates, MembershipState.COVERED, JOINED - timedelta(days=1), accident=True, rules=RULES
    )


def test_membership_ends_on_the_sixtieth_birthday() -> None:
    dates = coverage_dates(RULES, JOINED, date(1967, 5, 10))
    assert dates.ages_out_on == date(2027, 5, 10)
    assert state_on(dates, MembershipState.COVERED, date(2027, 5, 9)) is MembershipState.COVERED
    assert state_on(dates, MembershipState.COVERED, date(2027, 5, 10)) is MembershipState.ENDED


def test_someone_born_on_29_february_ages_on_1_march_in_common_years() -> None:
    assert anniversary(date(2000, 2, 29), 1) == date(2001, 3, 1)
    assert age_in_years(date(2000, 2, 29), date(2001, 2, 28)) == 0
    assert age_in_years(date(2000, 2, 29), date(2001, 3, 1)) == 1
    assert age_in_years(date(2000, 2, 29), date(2004, 2, 29)) == 4


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 1, 1)), st.integers(0, 120))
def test_a_person_is_exactly_n_on_their_nth_birthday(birth_on: date, years: int) -> None:
    birthday = anniversary(birth_on, years)
    assert age_in_years(birth_on, birthday) == years
    assert age_in_years(birth_on, birthday - timedelta(days=1)) == years - 1


def test_children_may_join_from_30_days_old() -> None:
    assert enrollment_refusals(RULES, person(JOINED - timedelta(days=30)), HEALTHY, JOINED) == []
    refusals = enrollment_refusals(RULES, person(JOINED - timedelta(days=29)), HEALTHY, JOINED)
    assert [r.code for r in refusals] == ["too_young"]


def test_entry_is_open_until_the_day_before_the_sixtieth_birthday() -> None:
    assert enrollment_refusals(RULES, person(date(1966, 3, 2)), HEALTHY, JOINED) == []
    refusals = enrollment_refusals(RULES, person(date(1966, 3, 1)), HEALTHY, JOINED)
    assert [r.code for r in refusals] == ["too_old"]


def test_elderly_plan_takes_60_to_70() -> None:
    answers = {q.code: False for q in ELDERLY.health_questions}
    assert [
        r.code for r in enrollment_refusals(ELDERLY, person(date(1970, 1, 1)), answers, JOINED)
    ] == ["too_young"]
    assert enrollment_refusals(ELDERLY, person(date(1960, 1, 1)), answers, JOINED) == []
    assert [
        r.code for r in enrollment_refusals(ELDERLY, person(date(1950, 1, 1)), answers, JOINED)
    ] == ["too_old"]


def test_any_yes_in_the_health_declaration_refuses_naming_the_question() -> None:
    answers = dict(HEALTHY, tumour=True, diabetes=True)
    refusals = enrollment_refusals(RULES, person(date(1990, 1, 1)), answers, JOINED)
    assert [(r.code, r.field) for r in refusals] == [
        ("health_declaration", "health_answers.tumour"),
        ("health_declaration", "health_answers.diabetes"),
    ]
    with pytest.raises(DomainError) as refused:
        refuse_if_any(refusals)
    assert refused.value.code == "health_declaration"
    assert refused.value.field == "health_answers.tumour"
    assert len(refused.value.details["refusals"]) == 2


def test_unanswered_and_unknown_questions_are_refused() -> None:
    answers = {"tumour": False, "smoker": False}
    codes = {r.code for r in enrollment_refusals(RULES, person(date(1990, 1, 1)), answers, JOINED)}
    assert codes == {"health_answer_missing", "unknown_question"}


def test_a_credit_score_below_the_plan_minimum_refuses() -> None:
    born = person(date(1990, 1, 1))
    assert enrollment_refusals(RULES, born, HEALTHY, JOINED, credit_score=650) == []
    assert [
        r.code for r in enrollment_refusals(RULES, born, HEALTHY, JOINED, credit_score=649)
    ] == ["credit_check_failed"]


def test_a_birth_date_in_the_future_is_refused() -> None:
    refusals = enrollment_refusals(RULES, person(JOINED + timedelta(days=1)), HEALTHY, JOINED)
    assert [r.code for r in refusals] == ["born_in_future"]


@pytest.mark.parametrize(("state", "event"), list(TRANSITIONS))
def test_every_listed_transition_is_allowed(state: MembershipState, event: MembershipEvent) -> None:
    assert transition(state, event) is TRANSITIONS[(state, event)]


@pytest.mark.parametrize(
    ("state", "event"),
    [(s, e) for s in MembershipState for e in MembershipEvent if (s, e) not in TRANSITIONS],
)
def test_every_other_transition_is_refused(state: MembershipState, event: MembershipEvent) -> None:
    with pytest.raises(DomainError) as refused:
        transition(state, event)
    assert refused.value.code == "invalid_transition"


def test_left_and_ended_are_final() -> None:
    for final in (MembershipState.LEFT, MembershipState.ENDED):
        assert not any(state is final for state, _ in TRANSITIONS)
