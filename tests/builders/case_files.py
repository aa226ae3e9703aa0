"""Builders for issue #18's screens: a disputed case whose notes name the claimant (for the
juror's redacted case file), members in the waiting period."""

from __future__ import annotations

from datetime import date, timedelta

from tests.factories import account, enroll, resident_id
from tests.web.conftest import phone_of

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import RejectionReason
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.claims.evidence import add_evidence
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.review import (
    assign_investigation,
    decide_claim,
    file_investigation_report,
    start_review,
)
from mutualaid.services.context import ServiceContext
from mutualaid.services.juries.panels import dispute_rejection

NAME = "欧阳明华"
BIRTH = date(1980, 6, 15)
ID_NUMBER = resident_id(BIRTH)


def covered(
    ctx: ServiceContext, clock: FixedClock, birth_on: date, name: str = "张三华"
) -> tuple[Actor, int]:
    member = account(ctx)
    now = clock.now()
    clock.set(now - timedelta(days=200))
    try:
        membership = enroll(ctx, member, birth_on, name=name, id_number=resident_id(birth_on))
    finally:
        clock.set(now)
    return member, membership.id


def disputed_case(ctx: ServiceContext, clock: FixedClock) -> tuple[Actor, str]:
    """A claim investigated, rejected and disputed, where the claimant's name, ID number and phone
    were written into every free-text note and into a document's label."""
    member = account(ctx)
    now = clock.now()
    clock.set(now - timedelta(days=200))
    membership = enroll(ctx, member, BIRTH, name=NAME, id_number=ID_NUMBER)
    clock.set(now)
    phone = phone_of(ctx, member.account_id)
    claim = report_claim(
        ctx,
        member,
        ClaimReport(
            membership.id, "CI01", now.date() - timedelta(days=3), "浙江大学医学院附属第一医院"
        ),
    )
    add_evidence(
        ctx,
        member,
        claim.ref,
        iter([b"%PDF-1.4 diagnosis"]),
        "application/pdf",
        f"{NAME}的诊断证明",
        date(2026, 2, 25),
    )
    add_evidence(
        ctx,
        member,
        claim.ref,
        iter([b"\xff\xd8\xff card \xff\xd9"]),
        "image/jpeg",
        f"身份证 {ID_NUMBER}",
    )
    reviewer, decider = account(ctx, Role.REVIEWER), account(ctx, Role.REVIEWER)
    investigator = account(ctx, Role.INVESTIGATOR)
    start_review(ctx, reviewer, claim.ref)
    assign_investigation(ctx, reviewer, claim.ref, investigator.account_id)
    file_investigation_report(
        ctx,
        investigator,
        claim.ref,
        f"走访医院：{NAME}（身份证{ID_NUMBER}，电话{phone}）的肿瘤分期为原位癌",
        "reject",
    )
    decide_claim(
        ctx,
        decider,
        claim.ref,
        approve=False,
        reason_code=RejectionReason.CRITERIA_NOT_MET,
        note=f"{NAME}的病理报告显示原位癌，不符合定义",
    )
    dispute_rejection(ctx, member, claim.ref, f"我是明华，病理报告已补充，请联系{phone}")
    return member, claim.ref
