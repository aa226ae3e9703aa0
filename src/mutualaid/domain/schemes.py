"""Sponsored schemes and the end of a plan: pure rules (issue 8).

A *sponsored scheme* is special cover the operator pays for, attached to a plan (Xiang Hu Bao's
COVID-19 cover from 31 Jan 2020: up to 100,000 yuan on death from the disease; a member who joined
after the start date must have been diagnosed more than 6 days after joining). Its claims are
reviewed and publicised like any other but paid from the sponsor account, never shared.

A plan ends in four states: ``open`` → ``winding_down`` (the end is announced: no new member; the
shares stop or go on until the end, per the plan's wind-down rule) → ``run_off`` (cover has ended:
members first diagnosed before the end date may still claim within the claim deadline, paid by
the sponsor) → ``closed`` (no claim can come any more: final checkpoint and archive).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass as rules_dataclass

from mutualaid.domain.errors import Conflict, DomainError
from mutualaid.domain.memberships import MembershipState
from mutualaid.domain.plans import Tier, json_fingerprint, read_toml, refusal_from

Refusal = tuple[str, str, str]


# --- sponsored schemes ------------------------------------------------------------------------------


@rules_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class SchemeRules:
    """One sponsored scheme, as an operator writes it in a TOML file."""

    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,39}$")]
    name_zh: Annotated[str, Field(min_length=1, max_length=200)]
    name_en: Annotated[str, Field(min_length=1, max_length=200)]
    #: Cover for illness first diagnosed on or after this day (in the plan's zone).
    starts_on: date
    #: Illness diagnosed after this day is not covered (None: until the plan ends).
    ends_on: date | None = None
    #: The one event the scheme covers (its own code: it is not in the plan's catalogue).
    illness_code: Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9_.-]{0,19}$")] = "SPONSORED"
    illness_zh: Annotated[str, Field(min_length=1)] = "专项保障"
    illness_en: Annotated[str, Field(min_length=1)] = "sponsored cover"
    payout_fen: Annotated[int, Field(gt=0, le=10**12)] = 10_000_000
    #: A member who joined after `starts_on` must be diagnosed MORE than this many days after
    #: joining (Xiang Hu Bao: 6). The plan's own waiting period does not apply.
    new_member_min_days: int = Field(default=6, ge=0, le=3650)
    #: Whether a payout ends the member's cover (a death benefit does).
    ends_coverage: bool = True

    @property
    def tier(self) -> Tier:
        return Tier.SEVERE if self.ends_coverage else Tier.MILD

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))  # type: ignore[no-any-return]

    def fingerprint(self) -> str:
        return json_fingerprint(self.to_json())


_SCHEME_ADAPTER = TypeAdapter(SchemeRules)


def parse_scheme(data: Mapping[str, Any]) -> SchemeRules:
    """Validate a scheme; refuse it with the exact key and the reason (code invalid_scheme)."""
    try:
        scheme = _SCHEME_ADAPTER.validate_json(json.dumps(data, default=str), strict=True)
    except ValidationError as error:
        raise refusal_from(error, "invalid_scheme") from None
    if scheme.ends_on is not None and scheme.ends_on < scheme.starts_on:
        raise DomainError("invalid_scheme", "the scheme ends before it starts", "ends_on")
    return scheme


def parse_scheme_toml(text: str) -> SchemeRules:
    return parse_scheme(read_toml(text, "invalid_scheme"))


@dataclass(frozen=True, slots=True)
class SchemeClaim:
    """What matters to a scheme about a claim: the membership's dates and the diagnosis."""

    joined_on: date
    diagnosed_on: date
    reported_on: date
    #: The day the membership stopped, if it has (cover ends then).
    ended_on: date | None
    ages_out_on: date
    membership_state: MembershipState
    has_open_claim: bool
    deadline_days: int


def scheme_refusal(scheme: SchemeRules, claim: SchemeClaim) -> Refusal | None:
    """Why this claim may not be filed under the scheme (code, message, field), or None."""
    diagnosed = claim.diagnosed_on
    if diagnosed > claim.reported_on:
        return ("diagnosis_in_future", "the diagnosis date is after today", "diagnosed_on")
    if diagnosed < scheme.starts_on:
        return (
            "before_scheme_start",
            f"{scheme.name_en} covers diagnoses from {scheme.starts_on}",
            "diagnosed_on",
        )
    if scheme.ends_on is not None and diagnosed > scheme.ends_on:
        return (
            "after_scheme_end",
            f"{scheme.name_en} covered diagnoses until {scheme.ends_on}",
            "diagnosed_on",
        )
    last_day = min(claim.ended_on or claim.ages_out_on, claim.ages_out_on)
    if not claim.joined_on <= diagnosed < last_day:
        return (
            "not_covered_member",
            "the person was not a member on the diagnosis date",
            "diagnosed_on",
        )
    days = (diagnosed - claim.joined_on).days
    if claim.joined_on > scheme.starts_on and days <= scheme.new_member_min_days:
        return (
            "scheme_waiting_period",
            f"a member who joined after {scheme.starts_on} is covered for a diagnosis more "
            f"than {scheme.new_member_min_days} days after joining (this one: {days})",
            "diagnosed_on",
        )
    if claim.membership_state is MembershipState.SUSPENDED:
        return (
            "membership_suspended",
            "the membership is suspended for an unpaid share: pay it to restore cover",
            "membership_id",
        )
    deadline = diagnosed + timedelta(days=claim.deadline_days)
    if claim.reported_on > deadline:
        return (
            "claim_deadline_passed",
            f"a claim must be reported within {claim.deadline_days} days of the first "
            f"diagnosis (by {deadline})",
            "diagnosed_on",
        )
    if claim.has_open_claim:
        return (
            "duplicate_open_claim",
            "this member already has an open claim in this plan",
            "membership_id",
        )
    return None


# --- promotional sponsorship of periods ---------------------------------------------------------------


class SponsorshipKind(StrEnum):
    #: The sponsor pays every member's share of the periods (Ant paid the first one, Jan 2019).
    PERIOD = "period"
    #: The sponsor pays what the caps remove, whatever the close asks for.
    CAP_EXCESS = "cap_excess"


@dataclass(frozen=True, slots=True)
class Sponsorship:
    kind: SponsorshipKind
    from_on: date
    to_on: date

    def covers(self, publicity_on: date) -> bool:
        return self.from_on <= publicity_on <= self.to_on


@dataclass(frozen=True, slots=True)
class PeriodSponsorship:
    """What the sponsor promised for one period."""

    pays_shares: bool
    pays_cap_excess: bool

    @property
    def reason(self) -> str | None:
        return "promotion" if self.pays_shares else None


def period_sponsorship(
    sponsorships: Iterable[Sponsorship], publicity_on: date
) -> PeriodSponsorship:
    kinds = {s.kind for s in sponsorships if s.covers(publicity_on)}
    shares = SponsorshipKind.PERIOD in kinds
    return PeriodSponsorship(shares, shares or SponsorshipKind.CAP_EXCESS in kinds)


def sponsorship_refusal(kind: str, from_on: date, to_on: date) -> Refusal | None:
    if kind not in set(SponsorshipKind):
        return ("invalid_sponsorship", f"kind is one of {', '.join(SponsorshipKind)}", "kind")
    if to_on < from_on:
        return ("invalid_sponsorship", "the range ends before it starts", "to_on")
    if (to_on - from_on).days > 366 * 5:
        return ("invalid_sponsorship", "a sponsorship covers at most five years", "to_on")
    return None


# --- the end of a plan ----------------------------------------------------------------------------------


class PlanStatus(StrEnum):
    OPEN = "open"
    WINDING_DOWN = "winding_down"
    RUN_OFF = "run_off"
    CLOSED = "closed"


class WindDownEvent(StrEnum):
    ANNOUNCE = "announce"
    END_COVER = "end_cover"
    CLOSE = "close"


#: The plan's life after launch: anything absent is refused.
TRANSITIONS: Mapping[tuple[PlanStatus, WindDownEvent], PlanStatus] = {
    (PlanStatus.OPEN, WindDownEvent.ANNOUNCE): PlanStatus.WINDING_DOWN,
    (PlanStatus.WINDING_DOWN, WindDownEvent.END_COVER): PlanStatus.RUN_OFF,
    (PlanStatus.RUN_OFF, WindDownEvent.CLOSE): PlanStatus.CLOSED,
}


def plan_transition(status: str, event: WindDownEvent) -> PlanStatus:
    try:
        return TRANSITIONS[(PlanStatus(status), event)]
    except (KeyError, ValueError):
        raise Conflict(
            "invalid_plan_transition",
            f"a plan that is {status.replace('_', ' ')} cannot {event.replace('_', ' ')}",
            "plan_code",
        ) from None


class WindDownRule(StrEnum):
    SPONSOR_PAID = "sponsor_paid"
    SHARED_UNTIL_END = "shared_until_end"


def attach_refusal(status: str) -> Refusal | None:
    """Why no sponsored scheme may be attached to a plan in this status (None: it may)."""
    if status == PlanStatus.OPEN:
        return None
    return ("plan_not_open", "a scheme can only be attached to an open plan", "plan_code")


def join_refusal(status: str) -> Refusal | None:
    """Why nobody may join a plan in this status (None: joins are open)."""
    if status == PlanStatus.OPEN:
        return None
    if status == PlanStatus.WINDING_DOWN:
        return ("plan_winding_down", "this plan is ending and accepts no new members", "plan_code")
    return ("plan_closed", "this plan no longer accepts members", "plan_code")


def sponsor_pays_new_claims(status: str, rule: str) -> bool:
    """Whether a claim filed now is paid by the sponsor instead of being shared."""
    if status in (PlanStatus.RUN_OFF, PlanStatus.CLOSED):
        return True
    return status == PlanStatus.WINDING_DOWN and rule == WindDownRule.SPONSOR_PAID


def filing_closed(status: str) -> Refusal | None:
    if status == PlanStatus.CLOSED:
        return ("plan_closed", "this plan has closed: its run-off period is over", "plan_code")
    return None


@dataclass(frozen=True, slots=True)
class EndDates:
    end_on: date
    #: The last day a run-off claim may be reported: a diagnosis on the last day of cover
    #: (end_on − 1) plus the claim deadline.
    run_off_until_on: date


def announcement_dates(
    today: date, end_on: date, *, notice_days: int, deadline_days: int
) -> EndDates:
    """Check an announced end date and derive the run-off window."""
    if end_on <= today:
        raise DomainError("end_date_not_in_future", "the end date must be after today", "end_on")
    earliest = today + timedelta(days=notice_days)
    if end_on < earliest:
        raise DomainError(
            "notice_too_short",
            f"the plan promises {notice_days} days' notice: end on {earliest} or later",
            "end_on",
            details={"days": notice_days, "earliest_on": earliest.isoformat()},
        )
    return EndDates(end_on, end_on - timedelta(days=1) + timedelta(days=deadline_days))


class MinimumStatus(StrEnum):
    NO_MINIMUM = "no_minimum"
    FILLING_UP = "filling_up"
    OK = "ok"
    BELOW = "below"


def minimum_status(
    active_members: int, minimum: int, launched_on: date, today: date, grace_days: int
) -> MinimumStatus:
    """Whether the plan has enough members for its per-case cap to cover a case."""
    if minimum <= 0:
        return MinimumStatus.NO_MINIMUM
    if active_members >= minimum:
        return MinimumStatus.OK
    if today < launched_on + timedelta(days=grace_days):
        return MinimumStatus.FILLING_UP
    return MinimumStatus.BELOW


# --- refunds --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefundCheck:
    payers: int
    refunded_fen: int
    balances_fen: int
    ledger_fen: int

    @property
    def exact(self) -> bool:
        return self.refunded_fen == self.balances_fen == self.ledger_fen


def check_refunds(
    payers: int, refunded_fen: int, balances_fen: int, ledger_fen: int, negative_balances: int
) -> RefundCheck:
    """Every remaining balance is refunded exactly: Σ refunds = Σ balances = the ledger's prepaid
    account, to the fen. Raises (and the caller's transaction rolls back) when not."""
    if negative_balances:
        raise Conflict(
            "negative_prepaid_balance",
            f"{negative_balances} prepaid balances are negative: fix them before refunds",
        )
    check = RefundCheck(payers, refunded_fen, balances_fen, ledger_fen)
    if not check.exact:
        raise Conflict(
            "refunds_do_not_balance",
            f"refunds {refunded_fen} fen, balances {balances_fen} fen and ledger "
            f"{ledger_fen} fen differ; nothing was refunded",
        )
    return check
