"""Security #13 finding 11: only jurors of the round, and staff, read a jury case file."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from tests.factories import covered_member, publish_demo_plans, staff

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import RejectionReason
from mutualaid.domain.errors import Forbidden
from mutualaid.domain.juries import CERTIFICATION_QUIZ
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.review import decide_claim, start_review
from mutualaid.services.context import ServiceContext
from mutualaid.services.juries.certification import certify_juror
from mutualaid.services.juries.panels import dispute_rejection
from mutualaid.services.juries.votes import juror_case_file

TODAY = date(2026, 3, 1)


@pytest.fixture(autouse=True)
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


def disputed_case(ctx: ServiceContext, clock: FixedClock) -> int:
    holder, membership = covered_member(ctx, clock)
    claim = report_claim(
        ctx, holder, ClaimReport(membership.id, "CI01", TODAY - timedelta(days=2), "四川省人民医院")
    )
    reviewer = staff(ctx, Role.REVIEWER)
    start_review(ctx, reviewer, claim.ref)
    decide_claim(
        ctx,
        reviewer,
        claim.ref,
        approve=False,
        reason_code=RejectionReason.CRITERIA_NOT_MET,
        note="the stage does not meet the definition",
    )
    return dispute_rejection(ctx, holder, claim.ref, "please look again").id


def test_an_uncertified_member_cannot_read_a_disputed_case_file(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    case_id = disputed_case(ctx, clock)
    outsider, _ = covered_member(ctx, clock)
    with pytest.raises(Forbidden) as refused:
        juror_case_file(ctx, outsider, case_id)
    assert refused.value.code == "not_a_juror"


def test_a_certified_juror_and_staff_read_the_case_file(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    juror, _ = covered_member(ctx, clock, birth_on=date(1985, 1, 1))
    assert certify_juror(ctx, juror, {q.code: q.answer for q in CERTIFICATION_QUIZ}).passed
    case_id = disputed_case(ctx, clock)
    assert juror_case_file(ctx, juror, case_id).case.illness_code == "CI01"
    assert juror_case_file(ctx, staff(ctx, Role.REVIEWER), case_id).case.illness_code == "CI01"
