"""Where a claim stands and what comes next, for the member who filed it: the five steps (filed,
review, publicity, objection deadline, payout), the documents to send, the dates to expect and the
last day to dispute a rejection. Pure: the claim's state and dates and the plan's rules come in.

Expected dates are the plan's promises, not forecasts: the review is decided within
`claims.review_days` of the report, a case approved is published on the next publicity day and
open to objections for `periods.publicity_length_days`, shared in the period of the first
publicity day after that and paid within `claims.payout_days` of that period's collection. A
rejection may be disputed until `claims.dispute_days` after the decision (all in the plan's zone).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from mutualaid.domain.calendars import local_date
from mutualaid.domain.claims import ClaimState, next_publicity_day, publicity_window
from mutualaid.domain.errors import DomainError
from mutualaid.domain.plans import PlanRules

#: Defaults of the plan keys `claims.review_days`, `claims.payout_days`, `claims.dispute_days`.
DEFAULT_REVIEW_DAYS = 30
DEFAULT_PAYOUT_DAYS = 7
DEFAULT_DISPUTE_DAYS = 30


class Step(StrEnum):
    FILED = "filed"
    REVIEW = "review"
    PUBLICITY = "publicity"
    OBJECTIONS = "objections"
    PAYOUT = "payout"


class StepStatus(StrEnum):
    DONE = "done"
    CURRENT = "current"
    TODO = "todo"
    #: The claim stopped here (rejected, withdrawn): the later steps will not come.
    STOPPED = "stopped"


#: Documents every claim needs, and one more when an accident caused the illness.
DOCUMENTS = ("id_card", "diagnosis", "medical_record", "bank_card")
ACCIDENT_DOCUMENT = "accident_report"

#: The step each state is at (the steps before it are done).
_AT: dict[ClaimState, Step] = {
    ClaimState.SUBMITTED: Step.REVIEW,
    ClaimState.IN_REVIEW: Step.REVIEW,
    ClaimState.INVESTIGATING: Step.REVIEW,
    ClaimState.AWAITING_DOCUMENTS: Step.REVIEW,
    ClaimState.RE_REVIEW: Step.REVIEW,
    ClaimState.JURY_VOTING: Step.REVIEW,
    ClaimState.REJECTED: Step.REVIEW,
    ClaimState.CLOSED_REJECTED: Step.REVIEW,
    ClaimState.WITHDRAWN: Step.REVIEW,
    ClaimState.APPROVAL_PROPOSED: Step.PUBLICITY,
    ClaimState.IN_PUBLICITY: Step.OBJECTIONS,
    ClaimState.APPROVED: Step.PAYOUT,
    ClaimState.PAID: Step.PAYOUT,
}
#: States whose publicity day is the claim's own (a case reviewed again waits for a new one).
_PUBLISHED = frozenset(
    {ClaimState.APPROVAL_PROPOSED, ClaimState.IN_PUBLICITY, ClaimState.APPROVED, ClaimState.PAID}
)
_STOPPED = frozenset({ClaimState.REJECTED, ClaimState.CLOSED_REJECTED, ClaimState.WITHDRAWN})


@dataclass(frozen=True, slots=True)
class ClaimDates:
    """What the member's claim is known to have reached (local dates in the plan's zone)."""

    state: ClaimState
    reported_on: date
    accident: bool = False
    decided_on: date | None = None
    publicity_on: date | None = None
    paid_on: date | None = None


@dataclass(frozen=True, slots=True)
class StepView:
    step: Step
    status: StepStatus
    #: The day it happened (done) or is expected (None: it will not come, or no date is known).
    on: date | None


@dataclass(frozen=True, slots=True)
class ClaimProgress:
    steps: tuple[StepView, ...]
    documents: tuple[str, ...]
    review_by: date | None
    publicity_on: date | None
    objections_close_at: datetime | None
    payout_by: date | None
    #: The last day a rejection may be disputed (only for a rejected claim), and whether it
    #: may still be disputed today.
    dispute_by: date | None
    can_dispute: bool


def review_days(rules: PlanRules) -> int:
    return rules.claims.review_days or DEFAULT_REVIEW_DAYS


def payout_days(rules: PlanRules) -> int:
    return rules.claims.payout_days or DEFAULT_PAYOUT_DAYS


def dispute_deadline(rules: PlanRules, decided_on: date) -> date:
    """The last day (included) a rejection decided on `decided_on` may be disputed."""
    return decided_on + timedelta(days=rules.claims.dispute_days or DEFAULT_DISPUTE_DAYS)


def check_dispute_in_time(rules: PlanRules, decided_on: date, today: date) -> None:
    """Refuse a dispute after the plan's dispute deadline."""
    deadline = dispute_deadline(rules, decided_on)
    if today > deadline:
        raise DomainError(
            "dispute_too_late",
            f"a rejection may be disputed until {deadline.isoformat()}",
            "reason",
            details={"deadline_on": deadline.isoformat()},
        )


def collection_day(rules: PlanRules, publicity_on: date) -> date:
    """The debit day of the period whose publicity day is `publicity_on`."""
    periods = rules.periods
    index = periods.publicity_days.index(publicity_on.day)
    return publicity_on.replace(day=periods.debit_days[index])


def claim_progress(rules: PlanRules, claim: ClaimDates, today: date) -> ClaimProgress:
    """The steps of a claim with their dates, the documents it needs and its deadlines."""
    zone = rules.zone
    stopped = claim.state in _STOPPED
    decided = claim.decided_on is not None and claim.state not in (
        ClaimState.SUBMITTED,
        ClaimState.IN_REVIEW,
        ClaimState.INVESTIGATING,
        ClaimState.AWAITING_DOCUMENTS,
        ClaimState.RE_REVIEW,
        ClaimState.JURY_VOTING,
    )
    review_by = claim.reported_on + timedelta(days=review_days(rules))
    review_on = claim.decided_on if decided or stopped else max(review_by, today)
    publicity_on: date | None = None
    publicity_closes: datetime | None = None
    payout_by: date | None = None
    if not stopped:
        after_review = review_on or today
        # A jury's approval is final: such a case is approved without a publicity of its own.
        jury_approved = claim.state in (ClaimState.APPROVED, ClaimState.PAID) and (
            claim.publicity_on is None
        )
        if jury_approved:
            shared_on = next_publicity_day(rules, after_review)
        else:
            known = claim.publicity_on if claim.state in _PUBLISHED else None
            publicity_on = known or next_publicity_day(rules, after_review)
            publicity_closes = publicity_window(rules, publicity_on).closes_at
            shared_on = next_publicity_day(rules, local_date(publicity_closes, zone))
        payout_by = claim.paid_on or collection_day(rules, shared_on) + timedelta(
            days=payout_days(rules)
        )
    dates = {
        Step.FILED: claim.reported_on,
        Step.REVIEW: review_on,
        Step.PUBLICITY: publicity_on,
        Step.OBJECTIONS: local_date(publicity_closes, zone) if publicity_closes else None,
        Step.PAYOUT: payout_by,
    }
    at = list(Step).index(_AT[claim.state])
    steps = []
    for index, step in enumerate(Step):
        if index < at or claim.state is ClaimState.PAID:
            status = StepStatus.DONE
        elif index == at:
            status = StepStatus.STOPPED if stopped else StepStatus.CURRENT
        else:
            status = StepStatus.TODO
        steps.append(StepView(step, status, dates[step]))
    dispute_by = (
        dispute_deadline(rules, claim.decided_on)
        if claim.state is ClaimState.REJECTED and claim.decided_on is not None
        else None
    )
    return ClaimProgress(
        steps=tuple(steps),
        documents=DOCUMENTS + ((ACCIDENT_DOCUMENT,) if claim.accident else ()),
        review_by=None if decided or stopped else review_by,
        publicity_on=publicity_on,
        objections_close_at=publicity_closes,
        payout_by=payout_by,
        dispute_by=dispute_by,
        can_dispute=dispute_by is not None and today <= dispute_by,
    )
