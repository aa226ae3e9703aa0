"""A small plan that has lived: a claim paid through publicity and a closed period, a claim in
publicity, a rejected claim, a published checkpoint, and one account of each role, for tests that
walk every page (in Chinese) as each role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tests.builders.juries import RIGHT_ANSWERS
from tests.factories import MAIN_PLAN, TEST_LOG_KEY, account, enroll, resident_id

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import RejectionReason
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
from mutualaid.services.juries.certification import certify_juror
from mutualaid.services.juries.panels import dispute_rejection, seat_waiting_panels
from mutualaid.services.periods.close import close_period
from mutualaid.services.transparency.checkpoints import LogConfig, publish_checkpoint

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: A small valid JPEG, the same for every claim (so the risk signal for a shared file fires).
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")


@dataclass(frozen=True)
class LivedIn:
    accounts: dict[Role, Actor]
    member_membership_id: int
    paid_ref: str
    publicity_ref: str
    rejected_ref: str
    closed_on: date


def _covered(ctx: ServiceContext, clock: FixedClock, holder: Actor, birth_on: date, name: str):  # type: ignore[no-untyped-def]
    now = clock.now()
    clock.set(now - timedelta(days=200))
    try:
        return enroll(ctx, holder, birth_on, name=name, id_number=resident_id(birth_on))
    finally:
        clock.set(now)


def _investigated(
    ctx: ServiceContext, staff: dict[Role, Actor], member: Actor, membership_id: int
) -> str:
    now = ctx.clock.now()
    claim = report_claim(
        ctx,
        member,
        ClaimReport(membership_id, "CI01", now.date() - timedelta(days=3), "杭州市第一人民医院"),
    )
    add_evidence(ctx, member, claim.ref, [JPEG], "image/jpeg", "诊断证明")
    start_review(ctx, staff[Role.REVIEWER], claim.ref)
    assign_investigation(ctx, staff[Role.REVIEWER], claim.ref, staff[Role.INVESTIGATOR].account_id)
    file_investigation_report(
        ctx, staff[Role.INVESTIGATOR], claim.ref, "病历与诊断证明一致", "approve", cost_fen=35_000
    )
    return claim.ref


def lived_in(ctx: ServiceContext, clock: FixedClock) -> LivedIn:
    staff = {role: account(ctx, role) for role in (Role.REVIEWER, Role.INVESTIGATOR, Role.OPERATOR)}
    staff[Role.AUDITOR] = account(ctx, Role.AUDITOR)
    approver = account(ctx, Role.REVIEWER)
    member = account(ctx)
    membership = _covered(ctx, clock, member, date(1988, 4, 2), "欧阳明华")
    other = account(ctx)
    other_membership = _covered(ctx, clock, other, date(1975, 9, 12), "李秀英")
    third = account(ctx)
    third_membership = _covered(ctx, clock, third, date(1969, 1, 30), "王建国")

    # A claim approved, published, through publicity and charged in a closed period.
    paid_ref = _investigated(ctx, staff, member, membership.id)
    decided = decide_claim(ctx, approver, paid_ref, approve=True)
    assert decided.publicity_on is not None
    publicity_on = decided.publicity_on
    clock.set(datetime.combine(publicity_on, time(9), tzinfo=SHANGHAI))
    run_publicity(ctx, MAIN_PLAN, staff[Role.OPERATOR])
    clock.set(datetime.combine(publicity_on + timedelta(days=4), time(9), tzinfo=SHANGHAI))
    run_publicity(ctx, MAIN_PLAN, staff[Role.OPERATOR])
    closed_on = (
        date(publicity_on.year, publicity_on.month, 21)
        if publicity_on.day == 7
        else date(publicity_on.year + (publicity_on.month == 12), publicity_on.month % 12 + 1, 7)
    )
    clock.set(datetime.combine(closed_on, time(10), tzinfo=SHANGHAI))
    close_period(ctx, staff[Role.OPERATOR], MAIN_PLAN, closed_on)

    # A claim in publicity, and a rejected one with the reviewer's reason.
    publicity_ref = _investigated(ctx, staff, other, other_membership.id)
    decided = decide_claim(ctx, approver, publicity_ref, approve=True)
    assert decided.publicity_on is not None
    clock.set(datetime.combine(decided.publicity_on, time(9), tzinfo=SHANGHAI))
    run_publicity(ctx, MAIN_PLAN, staff[Role.OPERATOR])
    rejected_ref = _investigated(ctx, staff, third, third_membership.id)
    decide_claim(
        ctx,
        approver,
        rejected_ref,
        approve=False,
        reason_code=RejectionReason.INSUFFICIENT_EVIDENCE,
        note="诊断证明缺少医院盖章",
    )
    # The member is a certified juror; the rejected claimant disputes, and a panel is drawn.
    assert certify_juror(ctx, member, RIGHT_ANSWERS).passed
    dispute_rejection(ctx, third, rejected_ref, "医院盖章的证明已经补交，请评审团重新看一下")
    publish_checkpoint(ctx, LogConfig(TEST_LOG_KEY))
    seat_waiting_panels(ctx)
    return LivedIn(
        {Role.MEMBER: member, **staff},
        membership.id,
        paid_ref,
        publicity_ref,
        rejected_ref,
        closed_on,
    )
