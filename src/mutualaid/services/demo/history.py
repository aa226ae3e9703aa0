"""A small plan that has lived, through the real services under a clock that moves forward: three
members covered since long ago; a claim approved, through publicity and charged in a closed
period; a claim in publicity; a rejected claim its claimant disputed before a member jury; a
published checkpoint; the jury's panel drawn from it. The demo (seeding.py) and the page tests
(tests/builders/lived_in.py) both live it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx

from mutualaid.clock import FixedClock
from mutualaid.domain.claims import RejectionReason
from mutualaid.domain.identities import Sex, make_resident_id
from mutualaid.domain.juries import CERTIFICATION_QUIZ
from mutualaid.domain.memberships import Relation
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.claims.evidence import add_evidence
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.publicity import run_publicity
from mutualaid.services.claims.review import (
    assign_investigation,
    decide_claim,
    file_investigation_report,
    start_review,
)
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.joins import EnrollmentRequest, enroll_member
from mutualaid.services.enrollment.memberships import MembershipView
from mutualaid.services.juries.certification import certify_juror
from mutualaid.services.juries.panels import dispute_rejection, seat_waiting_panels
from mutualaid.services.periods.close import close_period
from mutualaid.services.plans.plans import plan_rules
from mutualaid.services.transparency.checkpoints import LogConfig, publish_checkpoint

PLAN = "xhb-main"
SHANGHAI = ZoneInfo("Asia/Shanghai")
#: A small valid JPEG, the same for every claim (so the risk signal for a shared file fires).
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")
#: Every health answer "no": what a member who may join answers.
HEALTHY = {
    "long_medication": False,
    "long_hospital_stay": False,
    "tumour": False,
    "heart_disease": False,
    "diabetes": False,
}
#: The certification quiz answered right.
RIGHT_ANSWERS = {question.code: question.answer for question in CERTIFICATION_QUIZ}
#: How long before the history starts its members joined (their waiting period long over).
JOINED_BEFORE = timedelta(days=200)


@dataclass(frozen=True, slots=True)
class Cast:
    """The accounts that live the history; `approver` is a second reviewer (four eyes)."""

    reviewer: Actor
    approver: Actor
    investigator: Actor
    operator: Actor
    #: Files the claim that is paid, and is a certified juror.
    member: Actor
    #: Files the claim in publicity.
    neighbour: Actor
    #: Files the claim that is rejected, and disputes it.
    disputer: Actor


@dataclass(frozen=True, slots=True)
class History:
    member_membership_id: int
    paid_ref: str
    publicity_ref: str
    rejected_ref: str
    #: The publicity day of the closed period that charges the paid claim.
    closed_on: date


def at_nine(on: date) -> datetime:
    """09:00 in the plan's zone on `on`."""
    return datetime.combine(on, time(9), tzinfo=SHANGHAI)


def join_in_the_past(
    ctx: ServiceContext,
    clock: FixedClock,
    holder: Actor,
    person: EnrollmentRequest,
    before: timedelta = JOINED_BEFORE,
) -> MembershipView:
    """Enrol `person` as `before` ago (agreeing to the plan's rules as they stand), then put the
    clock back where it was."""
    agreed = replace(person, rules_sha256=plan_rules(ctx, PLAN)[0].rules_sha256)
    now = clock.now()
    clock.set(now - before)
    try:
        return enroll_member(ctx, holder, PLAN, agreed)
    finally:
        clock.set(now)


def person(name: str, birth_on: date, sequence: int, sex: Sex = Sex.MALE) -> EnrollmentRequest:
    """An adult joining for themself, with a valid ID number."""
    return EnrollmentRequest(
        name, make_resident_id("33", birth_on, sequence, sex), Relation.SELF, HEALTHY
    )


def _investigated(ctx: ServiceContext, cast: Cast, claimant: Actor, membership_id: int) -> str:
    now = ctx.clock.now()
    claim = report_claim(
        ctx,
        claimant,
        ClaimReport(membership_id, "CI01", now.date() - timedelta(days=3), "杭州市第一人民医院"),
    )
    add_evidence(ctx, claimant, claim.ref, [JPEG], "image/jpeg", "诊断证明")
    start_review(ctx, cast.reviewer, claim.ref)
    assign_investigation(ctx, cast.reviewer, claim.ref, cast.investigator.account_id)
    file_investigation_report(
        ctx, cast.investigator, claim.ref, "病历与诊断证明一致", "approve", cost_fen=35_000
    )
    return claim.ref


#: The publicity days of the shipped plan (its [periods] table), on which a period closes.
PUBLICITY_DAYS = frozenset({7, 21})


def next_period_day(after: date) -> date:
    """The plan's first publicity day strictly after `after`."""
    day = after + timedelta(days=1)
    while day.day not in PUBLICITY_DAYS:
        day += timedelta(days=1)
    return day


def previous_period_day(before: date) -> date:
    """The plan's last publicity day strictly before `before`."""
    day = before - timedelta(days=1)
    while day.day not in PUBLICITY_DAYS:
        day -= timedelta(days=1)
    return day


@dataclass(frozen=True, slots=True)
class FirstPeriod:
    member_membership_id: int
    neighbour_membership_id: int
    disputer_membership_id: int
    paid_ref: str
    closed_on: date


def live_first_period(ctx: ServiceContext, clock: FixedClock, cast: Cast) -> FirstPeriod:
    """From `clock`'s present (ctx's clock): three members who joined long ago, and a claim
    approved, through publicity and charged in a period closed about a month later."""
    membership = join_in_the_past(
        ctx, clock, cast.member, person("欧阳明华", date(1988, 4, 2), 401)
    )
    neighbour = join_in_the_past(
        ctx, clock, cast.neighbour, person("李秀英", date(1975, 9, 12), 402, Sex.FEMALE)
    )
    disputer = join_in_the_past(ctx, clock, cast.disputer, person("王建国", date(1969, 1, 30), 403))
    paid_ref = _investigated(ctx, cast, cast.member, membership.id)
    decided = decide_claim(ctx, cast.approver, paid_ref, approve=True)
    assert decided.publicity_on is not None
    publicity_on = decided.publicity_on
    clock.set(at_nine(publicity_on))
    run_publicity(ctx, PLAN, cast.operator)
    clock.set(at_nine(publicity_on + timedelta(days=4)))
    run_publicity(ctx, PLAN, cast.operator)
    closed_on = next_period_day(publicity_on)
    clock.set(at_nine(closed_on) + timedelta(hours=1))
    close_period(ctx, cast.operator, PLAN, closed_on)
    # The member is a certified juror (while still covered: a severe payout ends the cover).
    assert certify_juror(ctx, cast.member, RIGHT_ANSWERS).passed
    return FirstPeriod(membership.id, neighbour.id, disputer.id, paid_ref, closed_on)


def live_disputes(
    ctx: ServiceContext,
    clock: FixedClock,
    cast: Cast,
    first: FirstPeriod,
    log: LogConfig,
    *,
    witness_http: httpx.Client | None = None,
) -> History:
    """From `clock`'s present: a claim in publicity, a rejected claim its claimant disputes, a
    checkpoint signed by `log` (its witnesses reached through `witness_http`), and the jury's
    panel drawn from it (in a plan whose jury is a panel; an open vote opens at once)."""
    publicity_ref = _investigated(ctx, cast, cast.neighbour, first.neighbour_membership_id)
    decided = decide_claim(ctx, cast.approver, publicity_ref, approve=True)
    assert decided.publicity_on is not None
    clock.set(at_nine(decided.publicity_on))
    run_publicity(ctx, PLAN, cast.operator)
    rejected_ref = _investigated(ctx, cast, cast.disputer, first.disputer_membership_id)
    decide_claim(
        ctx,
        cast.approver,
        rejected_ref,
        approve=False,
        reason_code=RejectionReason.INSUFFICIENT_EVIDENCE,
        note="诊断证明缺少医院盖章",
    )
    dispute_rejection(
        ctx, cast.disputer, rejected_ref, "医院盖章的证明已经补交，请评审团重新看一下"
    )
    # The panel's seed is the root of a checkpoint published after the referral.
    clock.advance(timedelta(minutes=5))
    publish_checkpoint(ctx, log, http=witness_http)
    seat_waiting_panels(ctx)
    return History(
        first.member_membership_id, first.paid_ref, publicity_ref, rejected_ref, first.closed_on
    )


def live_history(ctx: ServiceContext, clock: FixedClock, cast: Cast, log: LogConfig) -> History:
    """The whole history from `clock`'s present, which it leaves one to two months later."""
    first = live_first_period(ctx, clock, cast)
    return live_disputes(ctx, clock, cast, first, log)
