"""Builders for juries: certified jurors, a rejected claim to dispute, a juror's right answers."""

from __future__ import annotations

from datetime import date, timedelta

from tests.factories import covered_member, staff

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import RejectionReason
from mutualaid.plan_files import read_plan_file
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR, Actor
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.review import decide_claim, start_review
from mutualaid.services.context import ServiceContext
from mutualaid.services.demo.history import RIGHT_ANSWERS
from mutualaid.services.juries.certification import certify_juror
from mutualaid.services.juries.votes import juror_case_file
from mutualaid.services.plans.plans import publish_plan

TODAY = date(2026, 3, 1)


def use_jury_rules(ctx: ServiceContext, **rules: object) -> None:
    """Publish the demo plan again with other jury settings (a new plan version)."""
    lines = "\n".join(f"{key} = {value!r}".replace("'", '"') for key, value in rules.items())
    publish_plan(ctx, None, read_plan_file("xhb-main.toml") + f"\n[jury]\n{lines}\n")


def rejected_claim(ctx: ServiceContext, clock: FixedClock) -> tuple[Actor, str]:
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
        note="the tumour stage does not meet the definition",
    )
    return holder, claim.ref


def jurors(ctx: ServiceContext, clock: FixedClock, count: int) -> list[Actor]:
    people = []
    for _ in range(count):
        juror, _ = covered_member(ctx, clock, birth_on=date(1985, 1, 1))
        assert certify_juror(ctx, juror, RIGHT_ANSWERS).passed
        people.append(juror)
    return people


def answers_for(ctx: ServiceContext, juror: Actor, case_id: int) -> dict[str, str]:
    """The case quiz's right answers: the ones matching the case facts.

    Read from the case file as staff: since security issue #13 (finding 11) only the round's
    jurors and staff may read it, and the tests of refused voters need the answers too.
    """
    file = juror_case_file(ctx, SYSTEM_ACTOR, case_id)
    return {
        "illness": file.case.illness_code,
        "age_band": f"{file.case.age // 10 * 10}-{file.case.age // 10 * 10 + 9}",
    }
