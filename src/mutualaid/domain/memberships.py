"""Membership of one person in one plan: who may join, when cover starts, how it ends."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from mutualaid.domain.calendars import age_in_days, age_in_years, anniversary
from mutualaid.domain.errors import DomainError
from mutualaid.domain.identities import ResidentId
from mutualaid.domain.plans import PlanRules


class MembershipState(StrEnum):
    WAITING = "waiting"
    COVERED = "covered"
    SUSPENDED = "suspended"
    LEFT = "left"
    ENDED = "ended"


#: States in which a person holds the plan's one membership (a second join is refused).
ACTIVE_STATES = frozenset(
    {MembershipState.WAITING, MembershipState.COVERED, MembershipState.SUSPENDED}
)


class MembershipEvent(StrEnum):
    WAITING_PERIOD_OVER = "waiting_period_over"
    SUSPEND = "suspend"  # a share went unpaid
    REINSTATE = "reinstate"  # the arrears were paid within the retry window
    LEAVE = "leave"
    REMOVE = "remove"  # unpaid after the retry window: removed by the plan
    AGE_OUT = "age_out"
    SEVERE_PAYOUT = "severe_payout"
    #: An illness (not an accident) first diagnosed in the waiting period: the membership ends
    #: with no payout and the shares paid are refunded (issue 19).
    WAITING_ILLNESS = "waiting_illness"
    #: Aged out into the plan the member opted in to move to (`age_out_move`); the new
    #: membership's first event is `move_in`.
    MOVE_OUT = "move_out"


#: The first event of a membership made by an age-out move (instead of `join`).
MOVE_IN = "move_in"


class EndReason(StrEnum):
    LEFT = "left"
    REMOVED_UNPAID = "removed_unpaid"
    AGED_OUT = "aged_out"
    SEVERE_PAYOUT = "severe_payout"
    WAITING_ILLNESS = "waiting_illness"
    MOVE_OUT = "move_out"


_W, _C, _S = MembershipState.WAITING, MembershipState.COVERED, MembershipState.SUSPENDED
_L, _E = MembershipState.LEFT, MembershipState.ENDED

#: The whole state machine: (state, event) -> next state. Anything absent is refused.
TRANSITIONS: Mapping[tuple[MembershipState, MembershipEvent], MembershipState] = {
    (_W, MembershipEvent.WAITING_PERIOD_OVER): _C,
    (_W, MembershipEvent.SUSPEND): _S,
    (_C, MembershipEvent.SUSPEND): _S,
    # Back to waiting: state_on() makes it covered again only once the waiting period is over.
    (_S, MembershipEvent.REINSTATE): _W,
    (_W, MembershipEvent.LEAVE): _L,
    (_C, MembershipEvent.LEAVE): _L,
    (_S, MembershipEvent.LEAVE): _L,
    (_S, MembershipEvent.REMOVE): _E,
    (_W, MembershipEvent.AGE_OUT): _E,
    (_C, MembershipEvent.AGE_OUT): _E,
    (_S, MembershipEvent.AGE_OUT): _E,
    (_W, MembershipEvent.SEVERE_PAYOUT): _E,
    (_C, MembershipEvent.SEVERE_PAYOUT): _E,
    (_W, MembershipEvent.WAITING_ILLNESS): _E,
    # Reported after the waiting period, diagnosed in it: the same end.
    (_C, MembershipEvent.WAITING_ILLNESS): _E,
    (_W, MembershipEvent.MOVE_OUT): _E,
    (_C, MembershipEvent.MOVE_OUT): _E,
}

END_REASONS: Mapping[MembershipEvent, EndReason] = {
    MembershipEvent.LEAVE: EndReason.LEFT,
    MembershipEvent.REMOVE: EndReason.REMOVED_UNPAID,
    MembershipEvent.AGE_OUT: EndReason.AGED_OUT,
    MembershipEvent.SEVERE_PAYOUT: EndReason.SEVERE_PAYOUT,
    MembershipEvent.WAITING_ILLNESS: EndReason.WAITING_ILLNESS,
    MembershipEvent.MOVE_OUT: EndReason.MOVE_OUT,
}


def transition(state: MembershipState, event: MembershipEvent) -> MembershipState:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise DomainError(
            "invalid_transition",
            f"a membership that is {state} cannot {event.replace('_', ' ')}",
            "state",
            details={"state": str(state)},
        ) from None


class Relation(StrEnum):
    SELF = "self"
    SPOUSE = "spouse"
    CHILD = "child"
    PARENT = "parent"


@dataclass(frozen=True, slots=True)
class CoverageDates:
    joined_on: date
    #: Last day of the waiting period ("day 90 included").
    waiting_ends_on: date
    covered_from_on: date
    #: The birthday on which the membership ends (exit age).
    ages_out_on: date


def coverage_dates(rules: PlanRules, joined_on: date, birth_on: date) -> CoverageDates:
    """The waiting period runs from 00:00 the day after joining for `days` days, the last included."""
    waiting_ends_on = joined_on + timedelta(days=rules.waiting_period.days)
    return CoverageDates(
        joined_on=joined_on,
        waiting_ends_on=waiting_ends_on,
        covered_from_on=waiting_ends_on + timedelta(days=1),
        ages_out_on=anniversary(birth_on, rules.entry.exit_age_years),
    )


def state_on(dates: CoverageDates, stored: MembershipState, on: date) -> MembershipState:
    """The state a membership is in on `on`, applying the transitions that time alone causes."""
    if stored in ACTIVE_STATES and on >= dates.ages_out_on:
        return MembershipState.ENDED
    if stored is MembershipState.WAITING and on >= dates.covered_from_on:
        return MembershipState.COVERED
    return stored


def is_illness_covered(
    dates: CoverageDates,
    stored: MembershipState,
    diagnosed_on: date,
    accident: bool,
    rules: PlanRules,
) -> bool:
    """Would an illness first diagnosed on `diagnosed_on` qualify under this membership?"""
    if diagnosed_on < dates.joined_on or diagnosed_on >= dates.ages_out_on:
        return False
    state = state_on(dates, stored, diagnosed_on)
    if state is MembershipState.COVERED:
        return True
    return state is MembershipState.WAITING and accident and rules.waiting_period.accidents_covered


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    message: str
    field: str
    #: The values the message names, for adapters that say it in another language.
    details: Mapping[str, Any] = dataclass_field(default_factory=dict)


def enrollment_refusals(
    rules: PlanRules,
    person: ResidentId,
    health_answers: Mapping[str, bool],
    on: date,
    credit_score: int | None = None,
) -> list[Refusal]:
    """Every reason this person may not join on `on` (empty list: they may)."""
    refusals: list[Refusal] = []
    entry = rules.entry
    if person.birth_on > on:
        refusals.append(Refusal("born_in_future", "the birth date is after today", "id_number"))
    elif age_in_days(person.birth_on, on) < entry.min_age_days:
        refusals.append(
            Refusal(
                "too_young",
                f"a member must be at least {entry.min_age_days} days old "
                f"(can join from {person.birth_on + timedelta(days=entry.min_age_days)})",
                "id_number",
                {
                    "variant": "days",
                    "days": entry.min_age_days,
                    "from_on": (person.birth_on + timedelta(days=entry.min_age_days)).isoformat(),
                },
            )
        )
    elif age_in_years(person.birth_on, on) < entry.min_age_years:
        refusals.append(
            Refusal(
                "too_young",
                f"this plan accepts members from {entry.min_age_years} years old",
                "id_number",
                {"variant": "years", "age": entry.min_age_years},
            )
        )
    elif age_in_years(person.birth_on, on) > entry.max_age_years:
        refusals.append(
            Refusal(
                "too_old",
                f"this plan accepts members up to {entry.max_age_years} years old",
                "id_number",
                {"variant": "years", "age": entry.max_age_years},
            )
        )
    for question in rules.health_questions:
        answer = health_answers.get(question.code)
        if answer is None:
            refusals.append(
                Refusal(
                    "health_answer_missing",
                    f"please answer: {question.text_en}",
                    f"health_answers.{question.code}",
                    {"question": question.text_en},
                )
            )
        elif answer:
            refusals.append(
                Refusal(
                    "health_declaration",
                    f"the plan cannot accept a member who answers yes to: {question.text_en}",
                    f"health_answers.{question.code}",
                    {"question": question.text_en},
                )
            )
    unknown = sorted(set(health_answers) - {q.code for q in rules.health_questions})
    for code in unknown:
        refusals.append(
            Refusal(
                "unknown_question",
                f"{code} is not a question of this plan",
                f"health_answers.{code}",
            )
        )
    if (
        entry.credit_min_score is not None
        and credit_score is not None
        and credit_score < entry.credit_min_score
    ):
        refusals.append(
            Refusal(
                "credit_check_failed",
                f"the credit check score is below the plan's minimum of {entry.credit_min_score}",
                "id_number",
                {"min_score": entry.credit_min_score},
            )
        )
    return refusals


def refuse_if_any(refusals: list[Refusal]) -> None:
    if refusals:
        first = refusals[0]
        raise DomainError(
            first.code,
            first.message,
            first.field,
            details={
                "refusals": [
                    {
                        "code": r.code,
                        "message": r.message,
                        "field": r.field,
                        "details": dict(r.details),
                    }
                    for r in refusals
                ]
            },
        )
