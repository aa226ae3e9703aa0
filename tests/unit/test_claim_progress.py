"""A claim's progress for the member: steps, documents, expected dates and the dispute deadline,
from the claim's state and the plan's rules (xhb-main: publicity on the 7th and 21st for 3 days,
collections on the 14th and 28th)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mutualaid.domain.claim_progress import (
    ACCIDENT_DOCUMENT,
    DOCUMENTS,
    ClaimDates,
    Step,
    StepStatus,
    check_dispute_in_time,
    claim_progress,
)
from mutualaid.domain.claims import ClaimState
from mutualaid.domain.errors import DomainError
from mutualaid.domain.plans import parse_plan_toml, rules_fingerprint
from mutualaid.plan_files import read_plan_file

MAIN = read_plan_file("xhb-main.toml")
RULES = parse_plan_toml(MAIN)
TUNED = parse_plan_toml(
    MAIN.replace(
        "deadline_days = 180",
        "deadline_days = 180\nreview_days = 10\npayout_days = 3\ndispute_days = 15",
        1,
    )
)


def statuses(progress: object) -> list[str]:
    return [str(s.status) for s in progress.steps]  # type: ignore[attr-defined]


def test_a_new_claim_is_in_review_with_every_later_date_promised() -> None:
    progress = claim_progress(
        RULES, ClaimDates(ClaimState.SUBMITTED, date(2026, 3, 2)), date(2026, 3, 2)
    )
    assert statuses(progress) == ["done", "current", "todo", "todo", "todo"]
    # Reviewed within 30 days, published on the next 7th or 21st, objections for 3 days, shared
    # in the period of the 21st, collected on the 28th, paid within 7 days of that.
    assert progress.review_by == date(2026, 4, 1)
    assert progress.publicity_on == date(2026, 4, 7)
    assert progress.objections_close_at == datetime(2026, 4, 9, 16, 0, tzinfo=UTC)
    assert progress.payout_by == date(2026, 5, 5)
    assert [s.on for s in progress.steps] == [
        date(2026, 3, 2),
        date(2026, 4, 1),
        date(2026, 4, 7),
        date(2026, 4, 10),
        date(2026, 5, 5),
    ]
    assert progress.documents == DOCUMENTS
    assert progress.dispute_by is None and not progress.can_dispute


def test_a_case_in_publicity_waits_for_the_objection_deadline() -> None:
    claim = ClaimDates(
        ClaimState.IN_PUBLICITY,
        date(2026, 2, 20),
        decided_on=date(2026, 3, 5),
        publicity_on=date(2026, 3, 7),
    )
    progress = claim_progress(RULES, claim, date(2026, 3, 8))
    assert statuses(progress) == ["done", "done", "done", "current", "todo"]
    assert progress.review_by is None
    assert progress.steps[1].on == date(2026, 3, 5)
    assert progress.objections_close_at == datetime(2026, 3, 9, 16, 0, tzinfo=UTC)
    assert progress.payout_by == date(2026, 4, 4)  # shared 21 Mar, collected 28 Mar, + 7 days


def test_a_paid_claim_shows_every_step_done_on_its_day() -> None:
    claim = ClaimDates(
        ClaimState.PAID,
        date(2026, 2, 20),
        decided_on=date(2026, 3, 5),
        publicity_on=date(2026, 3, 7),
        paid_on=date(2026, 3, 30),
    )
    progress = claim_progress(RULES, claim, date(2026, 4, 2))
    assert statuses(progress) == ["done"] * 5
    assert progress.steps[-1].on == progress.payout_by == date(2026, 3, 30)


def test_a_case_reviewed_again_after_an_objection_waits_for_a_new_publicity_day() -> None:
    claim = ClaimDates(
        ClaimState.RE_REVIEW,
        date(2026, 2, 20),
        decided_on=date(2026, 3, 5),
        publicity_on=date(2026, 3, 7),
    )
    progress = claim_progress(RULES, claim, date(2026, 3, 25))
    assert statuses(progress) == ["done", "current", "todo", "todo", "todo"]
    assert progress.publicity_on == date(2026, 4, 7)  # after the review promised by 22 Mar


def test_a_rejection_may_be_disputed_until_the_plans_deadline() -> None:
    claim = ClaimDates(ClaimState.REJECTED, date(2026, 3, 1), decided_on=date(2026, 3, 10))
    on_the_day = claim_progress(RULES, claim, date(2026, 4, 9))
    assert statuses(on_the_day) == ["done", "stopped", "todo", "todo", "todo"]
    assert on_the_day.dispute_by == date(2026, 4, 9) and on_the_day.can_dispute
    assert on_the_day.payout_by is None and on_the_day.publicity_on is None
    assert not claim_progress(RULES, claim, date(2026, 4, 10)).can_dispute
    assert claim_progress(TUNED, claim, date(2026, 3, 20)).dispute_by == date(2026, 3, 25)


def test_a_dispute_after_the_deadline_is_refused_as_too_late() -> None:
    check_dispute_in_time(RULES, date(2026, 3, 10), date(2026, 4, 9))
    with pytest.raises(DomainError) as refused:
        check_dispute_in_time(RULES, date(2026, 3, 10), date(2026, 4, 10))
    assert refused.value.code == "dispute_too_late"
    assert refused.value.details == {"deadline_on": "2026-04-09"}


def test_the_plan_keys_set_the_review_and_payout_dates() -> None:
    progress = claim_progress(
        TUNED, ClaimDates(ClaimState.IN_REVIEW, date(2026, 3, 2)), date(2026, 3, 3)
    )
    assert progress.review_by == date(2026, 3, 12)
    assert progress.publicity_on == date(2026, 3, 21)
    assert progress.payout_by == date(2026, 4, 17)  # shared 7 Apr, collected 14 Apr, + 3 days


def test_the_claim_progress_keys_leave_a_plans_rules_hash_alone_when_absent() -> None:
    assert "review_days" not in RULES.to_json()["claims"]
    assert TUNED.to_json()["claims"]["dispute_days"] == 15
    assert rules_fingerprint(TUNED) != rules_fingerprint(RULES)


def test_an_accident_needs_its_own_proof() -> None:
    claim = ClaimDates(ClaimState.SUBMITTED, date(2026, 3, 2), accident=True)
    assert claim_progress(RULES, claim, date(2026, 3, 2)).documents[-1] == ACCIDENT_DOCUMENT


def test_a_withdrawn_claim_stops_at_review_without_dates_to_come() -> None:
    progress = claim_progress(
        RULES, ClaimDates(ClaimState.WITHDRAWN, date(2026, 3, 2)), date(2026, 3, 3)
    )
    assert statuses(progress) == ["done", "stopped", "todo", "todo", "todo"]
    assert [s.on for s in progress.steps[1:]] == [None] * 4


@given(
    state=st.sampled_from(list(ClaimState)),
    reported_on=st.dates(date(2025, 1, 1), date(2027, 12, 31)),
    days_to_decision=st.integers(0, 90),
    days_to_today=st.integers(0, 200),
)
def test_the_dates_of_the_steps_never_go_backwards(
    state: ClaimState, reported_on: date, days_to_decision: int, days_to_today: int
) -> None:
    decided_on = reported_on + timedelta(days=days_to_decision)
    claim = ClaimDates(state, reported_on, decided_on=decided_on)
    progress = claim_progress(RULES, claim, reported_on + timedelta(days=days_to_today))
    dates = [s.on for s in progress.steps if s.on is not None]
    assert dates == sorted(dates)
    assert progress.steps[0].step is Step.FILED and progress.steps[0].status is StepStatus.DONE
    current = [s for s in progress.steps if s.status in (StepStatus.CURRENT, StepStatus.STOPPED)]
    assert len(current) == (0 if state is ClaimState.PAID else 1)
