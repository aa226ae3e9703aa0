"""The next step of a case and its date (domain/casework.py), and `claims.decision_days`."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from mutualaid.domain.casework import (
    DEFAULT_DECISION_DAYS,
    NEXT_STEPS,
    UNDECIDED,
    days_waiting,
    decision_deadline,
    next_step,
)
from mutualaid.domain.claims import ClaimState
from mutualaid.domain.plans import parse_plan_toml
from mutualaid.plan_files import read_plan_file

MAIN = read_plan_file("xhb-main.toml")
RULES = parse_plan_toml(MAIN)
REPORTED = date(2026, 3, 1)


def test_a_plan_file_without_decision_days_gets_the_default_and_keeps_its_hash() -> None:
    assert RULES.claims.decision_days is None
    assert "decision_days" not in RULES.to_json()["claims"]
    assert decision_deadline(RULES, REPORTED) == REPORTED + timedelta(days=DEFAULT_DECISION_DAYS)


def test_a_plan_file_sets_its_own_decision_days() -> None:
    text = MAIN.replace("deadline_days = 180", "deadline_days = 180\ndecision_days = 10", 1)
    rules = parse_plan_toml(text)
    assert rules.to_json()["claims"]["decision_days"] == 10
    assert decision_deadline(rules, REPORTED) == date(2026, 3, 11)


def test_every_state_has_a_next_step() -> None:
    assert set(NEXT_STEPS) == set(ClaimState)


@given(st.sampled_from(list(ClaimState)), st.integers(min_value=0, max_value=120))
def test_an_undecided_case_is_due_by_its_deadline_and_overdue_after_it(
    state: ClaimState, waited: int
) -> None:
    today = REPORTED + timedelta(days=waited)
    step = next_step(RULES, state, REPORTED, today)
    assert step.code == NEXT_STEPS[state]
    if state in UNDECIDED:
        assert step.due_on == decision_deadline(RULES, REPORTED)
        assert step.overdue == (waited > DEFAULT_DECISION_DAYS)
        assert days_waiting(REPORTED, today) == waited
    elif state not in (ClaimState.APPROVAL_PROPOSED, ClaimState.IN_PUBLICITY):
        assert step.due_on is None and not step.overdue


def test_publicity_steps_are_dated_by_the_publicity_calendar() -> None:
    proposed = next_step(
        RULES, ClaimState.APPROVAL_PROPOSED, REPORTED, REPORTED, publicity_on=date(2026, 3, 7)
    )
    assert (proposed.code, proposed.due_on) == ("publish", date(2026, 3, 7))
    published = next_step(
        RULES,
        ClaimState.IN_PUBLICITY,
        REPORTED,
        date(2026, 3, 20),
        publicity_closes_on=date(2026, 3, 14),
    )
    assert (published.code, published.due_on, published.overdue) == (
        "objections_close",
        date(2026, 3, 14),
        True,
    )
