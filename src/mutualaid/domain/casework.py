"""What staff do next on a case and by when: the decision deadline, days waiting and the next step
of each claim state (issue 18). Pure: today and the plan's rules come in as arguments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from mutualaid.domain.claims import ClaimState
from mutualaid.domain.plans import PlanRules

#: Days from the report to the decision when a plan file leaves `claims.decision_days` out.
DEFAULT_DECISION_DAYS = 30

S = ClaimState

#: States in which staff still owe the claimant a decision (the deadline applies).
UNDECIDED = frozenset(
    {S.SUBMITTED, S.IN_REVIEW, S.INVESTIGATING, S.AWAITING_DOCUMENTS, S.RE_REVIEW}
)

#: The next step of each state: what happens next, as a code the pages translate.
NEXT_STEPS: dict[ClaimState, str] = {
    S.SUBMITTED: "start_review",
    S.IN_REVIEW: "decide_or_investigate",
    S.INVESTIGATING: "file_report",
    S.AWAITING_DOCUMENTS: "await_documents",
    S.RE_REVIEW: "decide",
    S.APPROVAL_PROPOSED: "publish",
    S.IN_PUBLICITY: "objections_close",
    S.APPROVED: "pay_out",
    S.JURY_VOTING: "jury_decides",
    S.REJECTED: "dispute_window",
    S.PAID: "none",
    S.CLOSED_REJECTED: "none",
    S.WITHDRAWN: "none",
}


@dataclass(frozen=True, slots=True)
class NextStep:
    code: str
    #: When it is due (a date in the plan's zone), None when no date is known or owed.
    due_on: date | None
    overdue: bool = False


def decision_days(rules: PlanRules) -> int:
    return rules.claims.decision_days or DEFAULT_DECISION_DAYS


def decision_deadline(rules: PlanRules, reported_on: date) -> date:
    """The day by which staff owe a decision on a claim reported on `reported_on`."""
    return reported_on + timedelta(days=decision_days(rules))


def days_waiting(reported_on: date, today: date) -> int:
    return max(0, (today - reported_on).days)


def next_step(
    rules: PlanRules,
    state: ClaimState,
    reported_on: date,
    today: date,
    *,
    publicity_on: date | None = None,
    publicity_closes_on: date | None = None,
) -> NextStep:
    """The next step of a case and its date: the decision deadline while undecided, the
    publicity day once approval is proposed, the day objections close while in publicity."""
    code = NEXT_STEPS[state]
    due: date | None = None
    if state in UNDECIDED:
        due = decision_deadline(rules, reported_on)
    elif state is S.APPROVAL_PROPOSED:
        due = publicity_on
    elif state is S.IN_PUBLICITY:
        due = publicity_closes_on
    return NextStep(code, due, due is not None and due < today)
