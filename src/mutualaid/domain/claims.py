"""The life of a claim: who may claim, how much, and every step from report to payout.

Each step is an explicit transition; anything not in the table is refused with one error type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from mutualaid.domain.calendars import age_in_years, start_of_day
from mutualaid.domain.errors import DomainError
from mutualaid.domain.memberships import CoverageDates, MembershipState
from mutualaid.domain.money import Fen
from mutualaid.domain.plans import PlanRules


class ClaimState(StrEnum):
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    INVESTIGATING = "investigating"
    AWAITING_DOCUMENTS = "awaiting_documents"
    RE_REVIEW = "re_review"
    APPROVAL_PROPOSED = "approval_proposed"
    IN_PUBLICITY = "in_publicity"
    APPROVED = "approved"
    PAID = "paid"
    REJECTED = "rejected"
    JURY_VOTING = "jury_voting"
    CLOSED_REJECTED = "closed_rejected"
    WITHDRAWN = "withdrawn"


class ClaimEvent(StrEnum):
    START_REVIEW = "start_review"
    ASSIGN_INVESTIGATION = "assign_investigation"
    REQUEST_DOCUMENTS = "request_documents"
    PROVIDE_DOCUMENTS = "provide_documents"
    FILE_REPORT = "file_report"
    PROPOSE_APPROVAL = "propose_approval"
    REJECT = "reject"
    PUBLISH = "publish"
    UPHOLD_OBJECTION = "uphold_objection"
    CLOSE_PUBLICITY = "close_publicity"
    DISPUTE = "dispute"
    REFER_TO_JURY = "refer_to_jury"
    JURY_APPROVES = "jury_approves"
    JURY_REJECTS = "jury_rejects"
    JURY_INCONCLUSIVE = "jury_inconclusive"
    PAY = "pay"
    WITHDRAW = "withdraw"
    #: An illness (not an accident) first diagnosed in the waiting period: closed at filing with
    #: no payout; the membership ends and the shares paid are refunded (issue 19).
    WAITING_ILLNESS = "waiting_illness"


S, E = ClaimState, ClaimEvent

#: The whole claim state machine: (state, event) -> next state.
TRANSITIONS: Mapping[tuple[ClaimState, ClaimEvent], ClaimState] = {
    (S.SUBMITTED, E.START_REVIEW): S.IN_REVIEW,
    (S.IN_REVIEW, E.ASSIGN_INVESTIGATION): S.INVESTIGATING,
    (S.IN_REVIEW, E.REJECT): S.REJECTED,
    (S.INVESTIGATING, E.REQUEST_DOCUMENTS): S.AWAITING_DOCUMENTS,
    (S.AWAITING_DOCUMENTS, E.PROVIDE_DOCUMENTS): S.INVESTIGATING,
    (S.INVESTIGATING, E.FILE_REPORT): S.RE_REVIEW,
    (S.RE_REVIEW, E.PROPOSE_APPROVAL): S.APPROVAL_PROPOSED,
    (S.RE_REVIEW, E.REJECT): S.REJECTED,
    (S.RE_REVIEW, E.REFER_TO_JURY): S.JURY_VOTING,
    (S.APPROVAL_PROPOSED, E.PUBLISH): S.IN_PUBLICITY,
    (S.IN_PUBLICITY, E.UPHOLD_OBJECTION): S.RE_REVIEW,
    (S.IN_PUBLICITY, E.CLOSE_PUBLICITY): S.APPROVED,
    (S.IN_PUBLICITY, E.REFER_TO_JURY): S.JURY_VOTING,
    (S.REJECTED, E.DISPUTE): S.JURY_VOTING,
    (S.JURY_VOTING, E.JURY_APPROVES): S.APPROVED,
    (S.JURY_VOTING, E.JURY_REJECTS): S.CLOSED_REJECTED,
    # Too few votes in every round: people decide again, with the jury's record attached.
    (S.JURY_VOTING, E.JURY_INCONCLUSIVE): S.RE_REVIEW,
    (S.APPROVED, E.PAY): S.PAID,
    (S.SUBMITTED, E.WITHDRAW): S.WITHDRAWN,
    (S.IN_REVIEW, E.WITHDRAW): S.WITHDRAWN,
    (S.INVESTIGATING, E.WITHDRAW): S.WITHDRAWN,
    (S.AWAITING_DOCUMENTS, E.WITHDRAW): S.WITHDRAWN,
    (S.SUBMITTED, E.WAITING_ILLNESS): S.CLOSED_REJECTED,
}

#: Notes the services write on a claim's public timeline with values in them (`str.format`). The web
#: app shows them in the reader's language: web/i18n.py TIMELINE_NOTES holds the same texts.
NOTE_APPROVED = "approved subject to publicity from {on}"
NOTE_PUBLISHED = "published for objections until {at}"
NOTE_DISPUTABLE = "{note} — you may dispute this decision and ask for a member jury"
NOTE_JURY_TALLY = "jury: {approve} approve, {reject} reject, {recused} recused"
NOTE_JURY_TOO_FEW = "too few jurors voted in {rounds} rounds; staff will decide"
NOTE_PAID = "{amount} paid"
NOTE_WAITING_ILLNESS = (
    "diagnosed in the waiting period (until {on}) and not caused by an accident: no payout; "
    "the membership has ended and the shares paid are refunded"
)
#: How NOTE_PUBLISHED writes its instant (UTC).
NOTE_INSTANT_FORMAT = "%Y-%m-%d %H:%M UTC"

#: A person may have only one claim in these states per plan.
OPEN_STATES = frozenset(set(ClaimState) - {S.PAID, S.CLOSED_REJECTED, S.WITHDRAWN, S.REJECTED})
#: States whose members still owe nothing and whose evidence may still be added.
EVIDENCE_STATES = frozenset({S.SUBMITTED, S.IN_REVIEW, S.INVESTIGATING, S.AWAITING_DOCUMENTS})


#: Limits on what people write about a claim. The services check them with `written`; the API's
#: fields declare the same numbers.
MAX_NOTE_CHARS = 2_000  # notes, messages, reasons: decisions, disputes, referrals, objections
MIN_OBJECTION_CHARS = 10
MAX_FINDINGS_CHARS = 10_000
MAX_HOSPITAL_CHARS = 200
MAX_LABEL_CHARS = 100


def written(
    text: str,
    code: str,
    message: str,
    field: str,
    *,
    min_chars: int = 1,
    max_chars: int = MAX_NOTE_CHARS,
    details: Mapping[str, object] | None = None,
) -> str:
    """`text` without surrounding space, or a refusal `code` (with `details`) when it has fewer
    than `min_chars` or more than `max_chars` characters."""
    stripped = text.strip()
    if not min_chars <= len(stripped) <= max_chars:
        raise DomainError(code, message, field, details=details)
    return stripped


def transition(state: ClaimState, event: ClaimEvent) -> ClaimState:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise DomainError(
            "invalid_transition",
            f"a claim that is {state.replace('_', ' ')} cannot {event.replace('_', ' ')}",
            "state",
            details={"state": str(state)},
        ) from None


class RejectionReason(StrEnum):
    """Reason codes a reviewer chooses from; the member is told the matching words."""

    NOT_COVERED_ILLNESS = "not_covered_illness"
    PRE_EXISTING_CONDITION = "pre_existing_condition"
    WAITING_PERIOD = "waiting_period"
    INSUFFICIENT_EVIDENCE = "insufficient_evidence"
    FALSE_DECLARATION = "false_declaration"
    FRAUD = "fraud"
    CRITERIA_NOT_MET = "criteria_not_met"


@dataclass(frozen=True, slots=True)
class ClaimFacts:
    """What a member reports, and the membership it is reported under."""

    illness_code: str
    diagnosed_on: date
    accident: bool
    reported_on: date
    coverage: CoverageDates
    membership_state: MembershipState
    #: The day the membership stopped (left, removed, aged out, severe payout), if it has.
    ended_on: date | None = None
    end_reason: str | None = None


#: The `filing_refusal` code that is an outcome, not an error: the service records the claim
#: closed (`ClaimEvent.WAITING_ILLNESS`, reason `waiting_period`, no payout), ends the membership
#: (`MembershipEvent.WAITING_ILLNESS`) and refunds the shares it paid.
WAITING_PERIOD_OUTCOME = "waiting_period"


def in_waiting_period_illness(rules: PlanRules, facts: ClaimFacts) -> bool:
    """First diagnosed in the waiting period (day 90 included) and not an accident the plan
    covers in it."""
    return facts.diagnosed_on <= facts.coverage.waiting_ends_on and not (
        facts.accident and rules.waiting_period.accidents_covered
    )


def filing_refusal(
    rules: PlanRules, facts: ClaimFacts, has_open_claim: bool
) -> tuple[str, str, str, dict[str, object]] | None:
    """Why this claim may not be filed (code, message, field, details), or None when it may."""
    coverage = facts.coverage
    illness = rules.illness(facts.illness_code)
    if illness is None:
        return (
            "illness_not_covered",
            f"{facts.illness_code} is not an illness this plan covers",
            "illness_code",
            {},
        )
    if illness.cause == "accident" and not facts.accident:
        return (
            "accident_only",
            f"{facts.illness_code} is covered only when caused by an accident",
            "accident",
            {"illness_code": facts.illness_code},
        )
    if facts.diagnosed_on > facts.reported_on:
        return ("diagnosis_in_future", "the diagnosis date is after today", "diagnosed_on", {})
    if facts.end_reason == "severe_payout":
        return (
            "severe_payout_made",
            "this member has already received a severe illness payout",
            "membership_id",
            {},
        )
    ended_on = facts.ended_on or coverage.ages_out_on
    if not coverage.joined_on <= facts.diagnosed_on < min(ended_on, coverage.ages_out_on):
        return (
            "not_covered_member",
            "the person was not a member on the diagnosis date",
            "diagnosed_on",
            {},
        )
    if in_waiting_period_illness(rules, facts):
        # WAITING_PERIOD_OUTCOME: an outcome (the claim is recorded closed) while the membership
        # is waiting or covered; a refusal otherwise.
        return (
            "waiting_period",
            f"the illness was diagnosed in the waiting period (until {coverage.waiting_ends_on}) "
            "and was not caused by an accident",
            "diagnosed_on",
            {"waiting_ends_on": coverage.waiting_ends_on.isoformat()},
        )
    if facts.membership_state is MembershipState.SUSPENDED:
        return (
            "membership_suspended",
            "the membership is suspended for an unpaid share: pay it to restore cover",
            "membership_id",
            {},
        )
    deadline = facts.diagnosed_on + timedelta(days=rules.claims.deadline_days)
    if facts.reported_on > deadline:
        return (
            "claim_deadline_passed",
            f"a claim must be reported within {rules.claims.deadline_days} days of the first "
            f"diagnosis (by {deadline})",
            "diagnosed_on",
            {
                "variant": "dated",
                "days": rules.claims.deadline_days,
                "by_on": deadline.isoformat(),
            },
        )
    if has_open_claim:
        return (
            "duplicate_open_claim",
            "this member already has an open claim in this plan",
            "membership_id",
            {},
        )
    return None


def payout_for(
    rules: PlanRules, illness_code: str, birth_on: date, diagnosed_on: date, accident: bool
) -> Fen:
    """The payout, from the plan's schedule: age at first diagnosis, tier, cause. Never typed."""
    illness = rules.illness(illness_code)
    if illness is None:
        raise DomainError("illness_not_covered", f"{illness_code} is not covered", "illness_code")
    amount = rules.payout_fen(age_in_years(birth_on, diagnosed_on), illness.tier, accident)
    if amount is None:
        raise DomainError(
            "no_payout_band", "no payout band covers this age and tier", "illness_code"
        )
    return amount


def next_publicity_day(rules: PlanRules, proposed_on: date) -> date:
    """The first of the plan's publicity days strictly after `proposed_on`."""
    day = proposed_on + timedelta(days=1)
    for _ in range(62):
        if day.day in rules.periods.publicity_days:
            return day
        day += timedelta(days=1)
    raise AssertionError("publicity days are validated to fall in every month")


@dataclass(frozen=True, slots=True)
class PublicityWindow:
    published_on: date
    opens_at: datetime
    closes_at: datetime


def publicity_window(rules: PlanRules, published_on: date) -> PublicityWindow:
    """From 00:00 on the publicity day, for `publicity_length_days` whole days, in the plan's zone."""
    zone = rules.zone
    return PublicityWindow(
        published_on=published_on,
        opens_at=start_of_day(published_on, zone),
        closes_at=start_of_day(
            published_on + timedelta(days=rules.periods.publicity_length_days), zone
        ),
    )


def age_band_label(age: int) -> str:
    low = (age // 10) * 10
    return f"{low}-{low + 9}"
