"""The demo: the shipped plans, and a few months of their life made by the real services under a
clock set in the past (members who joined long ago, claims in every state, a period closed and
collected with one failed debit, a jury open with enough jurors for its quorum, witnessed
checkpoints), then logins for each role. Once: running it again changes nothing."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from datetime import date, timedelta

from sqlalchemy import select

from mutualaid.clock import FixedClock
from mutualaid.db.models import Account, JuryCase, JurySeat
from mutualaid.domain.accounts import Role
from mutualaid.domain.calendars import local_date
from mutualaid.domain.claims import RejectionReason
from mutualaid.domain.errors import DomainError
from mutualaid.domain.identities import Sex, make_resident_id
from mutualaid.domain.memberships import Relation
from mutualaid.plan_files import DEMO_PLAN_FILES, read_plan_file
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR, Actor, register_account
from mutualaid.services.claims.evidence import add_evidence
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.publicity import run_publicity
from mutualaid.services.claims.review import (
    assign_investigation,
    decide_claim,
    file_investigation_report,
    start_review,
)
from mutualaid.services.collections.debits import collect_period
from mutualaid.services.collections.payouts import pay_approved_claims
from mutualaid.services.collections.providers import SimulatedProvider
from mutualaid.services.context import ServiceContext
from mutualaid.services.demo.history import (
    HEALTHY,
    JPEG,
    PLAN,
    PUBLICITY_DAYS,
    RIGHT_ANSWERS,
    SHANGHAI,
    Cast,
    at_nine,
    join_in_the_past,
    live_disputes,
    live_first_period,
    person,
    previous_period_day,
)
from mutualaid.services.demo.witnesses import demo_witnesses
from mutualaid.services.demo_data import random_member_rows
from mutualaid.services.enrollment.joins import EnrollmentRequest
from mutualaid.services.enrollment.member_imports import import_members
from mutualaid.services.juries.certification import certify_juror
from mutualaid.services.plans.plans import publish_plan
from mutualaid.services.transparency.checkpoints import publish_checkpoint
from mutualaid.transparency.notes import SignerKey

DEMO_MEMBER_PHONE = "13800138000"
DEMO_PASSWORD = "mutualaid-demo"
DEMO_STAFF = {
    Role.OPERATOR: "10000000001",
    Role.REVIEWER: "10000000002",
    Role.INVESTIGATOR: "10000000003",
    Role.AUDITOR: "10000000004",
}
#: The second reviewer, who approves what the first reviewed (four eyes).
DEMO_APPROVER_PHONE = "10000000005"
#: The member whose bank refused the share of the closed period.
DEMO_DECLINED_PHONE = "13800138008"
#: The history's members (services/demo/history.py: Cast) and the claimants of each step of review.
_HISTORY_PHONES = {"member": "13800138001", "neighbour": "13800138002", "disputer": "13800138003"}
_CLAIMANTS = {
    "submitted": ("13800138004", "赵志强", date(1983, 6, 9)),
    "in_review": ("13800138005", "钱丽娟", date(1979, 11, 23)),
    "investigating": ("13800138006", "孙海涛", date(1991, 2, 14)),
    "rejected": ("13800138007", "周敏", date(1986, 8, 1)),
    "approval_proposed": ("13800138009", "吴国平", date(1972, 3, 5)),
}
_JUROR_PHONES = tuple(f"1380013801{n}" for n in range(1, 6))
#: The demo's jury: a drawn panel of five (all five must vote), open for 60 days, so the demo's
#: jury can reach its quorum with a handful of jurors (the shipped plan's open vote needs 1,000).
_PANEL_JURY = '\n[jury]\nmode = "panel"\npanel_size = 5\nvote_hours = 1440\n'


@dataclass(frozen=True, slots=True)
class DemoLogins:
    #: A covered member (with a covered child), who is also a certified juror.
    member_phone: str
    #: A juror seated on the open jury (None when no panel is open).
    juror_phone: str | None
    #: A member whose debit failed (a suspended card).
    declined_phone: str
    staff: dict[str, str]
    approver_phone: str
    password: str
    #: Valid ID numbers nobody in the demo holds, to try a join with.
    sample_id_numbers: tuple[str, ...]
    created: bool


def sample_id_numbers(today: date) -> tuple[str, ...]:
    """Valid ID numbers of an adult, a middle-aged adult and a child, none of them in the demo."""
    return (
        make_resident_id("31", today.replace(year=today.year - 30, day=15), 271, Sex.FEMALE),
        make_resident_id("44", today.replace(year=today.year - 45, day=3), 272, Sex.MALE),
        make_resident_id("31", today.replace(year=today.year - 6, day=20), 273, Sex.MALE),
    )


def history_start(today: date) -> date:
    """The day the history starts: two periods before the last publicity day that is over by
    `today` (its three days and the day after), so the history ends before today and the next
    publicity day is due about now, not weeks ago."""
    last = today - timedelta(days=5)
    if last.day not in PUBLICITY_DAYS:
        last = previous_period_day(last)
    closed_on = previous_period_day(last)
    return previous_period_day(closed_on) - timedelta(days=1)


def seed_demo(ctx: ServiceContext, signer: SignerKey, crowd: int = 300) -> DemoLogins:
    """Load the demo once (running it again changes nothing). `signer` signs its checkpoints:
    the log key the server and worker go on with."""
    with ctx.reading() as session:
        there = session.scalar(select(Account.id).where(Account.phone == DEMO_MEMBER_PHONE))
        # Never plant staff with a published password among real accounts.
        if there is None and session.scalar(select(Account.id).limit(1)) is not None:
            raise DomainError(
                "database_not_demo",
                "this database holds accounts and no demo; run the demo on an empty database",
                "MUTUALAID_DATABASE_URL",
            )
    if there is None:
        _live(ctx, signer, crowd)
    return DemoLogins(
        DEMO_MEMBER_PHONE,
        _seated_juror_phone(ctx),
        DEMO_DECLINED_PHONE,
        {str(role): phone for role, phone in DEMO_STAFF.items()},
        DEMO_APPROVER_PHONE,
        DEMO_PASSWORD,
        sample_id_numbers(local_date(ctx.clock.now(), SHANGHAI)),
        created=there is None,
    )


def _live(ctx: ServiceContext, signer: SignerKey, crowd: int) -> None:
    now = ctx.clock.now()
    start = at_nine(history_start(local_date(now, SHANGHAI)))
    clock = FixedClock(start - timedelta(days=400))
    past = replace(ctx, clock=clock)
    for name in DEMO_PLAN_FILES:
        text = read_plan_file(name)
        publish_plan(past, SYSTEM_ACTOR, text + _PANEL_JURY if name == f"{PLAN}.toml" else text)

    def register(phone: str, role: Role = Role.MEMBER, name: str | None = None) -> Actor:
        view = register_account(past, phone, DEMO_PASSWORD, role=role, display_name=name)
        return Actor(view.id, view.role)

    staff = {role: register(phone, role, f"demo {role}") for role, phone in DEMO_STAFF.items()}
    cast = Cast(
        reviewer=staff[Role.REVIEWER],
        approver=register(DEMO_APPROVER_PHONE, Role.REVIEWER, "demo reviewer 2"),
        investigator=staff[Role.INVESTIGATOR],
        operator=staff[Role.OPERATOR],
        **{role: register(phone) for role, phone in _HISTORY_PHONES.items()},
    )
    clock.set(start)
    if crowd:
        _import_crowd(past, cast.operator, crowd, start.date())
    _covered_jurors(past, clock, register(DEMO_MEMBER_PHONE, name="张三华"), start.date())
    claimants = {}
    for sequence, (state, (phone, name, born)) in enumerate(_CLAIMANTS.items(), 421):
        claimant = register(phone)
        joined = join_in_the_past(past, clock, claimant, person(name, born, sequence))
        claimants[state] = (claimant, joined.id)
    declined = register(DEMO_DECLINED_PHONE)
    join_in_the_past(past, clock, declined, person("郑晓燕", date(1990, 12, 12), 430, Sex.FEMALE))

    first = live_first_period(past, clock, cast)
    # Shares are debited on the next debit day; one payer's bank refuses, and the aid is paid.
    clock.set(max(clock.now(), at_nine(first.closed_on + timedelta(days=7))))
    collect_period(
        past, cast.operator, PLAN, first.closed_on, SimulatedProvider(failing={declined.account_id})
    )
    pay_approved_claims(past, cast.operator, PLAN, first.closed_on)
    with demo_witnesses(signer, clock) as log:
        live_disputes(past, clock, cast, first, log.config, witness_http=log.http)
        # Publicity ends for the claim in it; fresh claims reach each step of review.
        clock.set(max(clock.now(), at_nine(clock.now().date() + timedelta(days=4))))
        run_publicity(past, PLAN, cast.operator)
        _claims_at_each_step(past, cast, claimants)
        clock.advance(timedelta(hours=1))
        publish_checkpoint(past, log.config, http=log.http)
    assert clock.now() < now, "the demo's history must end before now"


def _import_crowd(ctx: ServiceContext, operator: Actor, crowd: int, today: date) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, ["payer_phone", "full_name", "id_number", "relation", "joined_on"]
    )
    writer.writeheader()
    writer.writerows(random_member_rows(crowd, today))
    buffer.seek(0)
    import_members(ctx, operator, PLAN, buffer, io.StringIO())


def _covered_jurors(ctx: ServiceContext, clock: FixedClock, member: Actor, today: date) -> None:
    """The demo member and their child, covered; the member and five more certified jurors."""
    join_in_the_past(
        ctx,
        clock,
        member,
        EnrollmentRequest(
            "张三华",
            make_resident_id("33", today.replace(year=today.year - 34), 11, Sex.MALE),
            Relation.SELF,
            HEALTHY,
        ),
    )
    join_in_the_past(
        ctx,
        clock,
        member,
        EnrollmentRequest(
            "张小雨",
            make_resident_id("33", today - timedelta(days=3 * 365), 12, Sex.FEMALE),
            Relation.CHILD,
            HEALTHY,
        ),
    )
    jurors = [member]
    for n, phone in enumerate(_JUROR_PHONES):
        view = register_account(ctx, phone, DEMO_PASSWORD)
        juror = Actor(view.id, view.role)
        born = date(1970 + 4 * n, 1 + 2 * n, 10 + n)
        join_in_the_past(ctx, clock, juror, person(f"陪审员{'甲乙丙丁戊'[n]}", born, 440 + n))
        jurors.append(juror)
    for juror in jurors:
        assert certify_juror(ctx, juror, RIGHT_ANSWERS).passed


def _claims_at_each_step(
    ctx: ServiceContext, cast: Cast, claimants: dict[str, tuple[Actor, int]]
) -> None:
    """A claim just filed, one in review, one under investigation, one rejected at desk review,
    one whose approval is proposed (published on the next publicity day)."""
    refs = {}
    for state, (claimant, membership_id) in claimants.items():
        diagnosed_on = ctx.clock.now().date() - timedelta(days=10)
        claim = report_claim(
            ctx, claimant, ClaimReport(membership_id, "CI02", diagnosed_on, "上海市第六人民医院")
        )
        add_evidence(ctx, claimant, claim.ref, [JPEG], "image/jpeg", "出院小结")
        refs[state] = claim.ref
        if state != "submitted":
            start_review(ctx, cast.reviewer, claim.ref)
    for state in ("investigating", "approval_proposed"):
        assign_investigation(ctx, cast.reviewer, refs[state], cast.investigator.account_id)
    file_investigation_report(
        ctx, cast.investigator, refs["approval_proposed"], "住院病历证实诊断", "approve"
    )
    decide_claim(
        ctx,
        cast.approver,
        refs["rejected"],
        approve=False,
        reason_code=RejectionReason.CRITERIA_NOT_MET,
        note="出院小结所写的病情未达到较重急性心肌梗死的定义",
    )
    decide_claim(ctx, cast.approver, refs["approval_proposed"], approve=True)


def _seated_juror_phone(ctx: ServiceContext) -> str | None:
    """A juror seated on an open jury: the demo member when drawn, else the first drawn."""
    with ctx.reading() as session:
        phones = list(
            session.scalars(
                select(Account.phone)
                .join(JurySeat, JurySeat.juror_account_id == Account.id)
                .join(JuryCase, JuryCase.id == JurySeat.jury_case_id)
                .where(JuryCase.status == "open")
                .order_by(JurySeat.id)
            )
        )
    return DEMO_MEMBER_PHONE if DEMO_MEMBER_PHONE in phones else next(iter(phones), None)
