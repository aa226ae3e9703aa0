"""The demo has lived: built by the real services on a fresh database, it holds claims in every
state, a period closed, collected and paid with one failed debit, a jury open with enough eligible
jurors for its quorum and witnessed checkpoints, all in the past; each printed login opens its
own pages; and building it again changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.factories import (
    HEALTHY,
    STAFF_TOTP_SECRET,
    TEST_LOG_KEY,
    account,
    current_rules_sha256,
)
from tests.web.conftest import Browser

from mutualaid.api.app import create_app
from mutualaid.db.models import (
    Account,
    AuditEvent,
    Claim,
    CollectionFailure,
    JuryCase,
    JurySeat,
    LogCheckpoint,
    Period,
)
from mutualaid.db.queries.plans import rules_of
from mutualaid.domain.accounts import Role
from mutualaid.domain.calendars import local_date
from mutualaid.domain.juries import Tally, decide
from mutualaid.domain.memberships import Relation
from mutualaid.services.accounts.second_factors import enrol_with_secret
from mutualaid.services.context import ServiceContext
from mutualaid.services.demo.seeding import (
    DEMO_APPROVER_PHONE,
    DEMO_PASSWORD,
    DemoLogins,
    seed_demo,
)
from mutualaid.services.enrollment.joins import EnrollmentRequest, enroll_member
from mutualaid.services.juries.eligibility import eligible_jurors
from mutualaid.services.transparency.checkpoints import proof_bundle
from mutualaid.transparency.verification import verify_subject_bundle

EVERY_STATE = {
    "submitted",
    "in_review",
    "investigating",
    "approval_proposed",
    "approved",
    "rejected",
    "jury_voting",
    "paid",
}


@pytest.fixture
def demo(ctx: ServiceContext) -> DemoLogins:
    return seed_demo(ctx, TEST_LOG_KEY, crowd=20)


@pytest.fixture
def site(ctx: ServiceContext, demo: DemoLogins) -> Iterator[TestClient]:
    with TestClient(create_app(ctx), base_url="http://localhost") as client:
        yield client


def _counts(ctx: ServiceContext) -> tuple[int, ...]:
    with ctx.reading() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(table)) or 0
            for table in (Account, Claim, Period, JuryCase, LogCheckpoint, AuditEvent)
        )


def test_the_demo_holds_every_promised_state_in_the_past(
    ctx: ServiceContext, demo: DemoLogins
) -> None:
    assert demo.created
    with ctx.reading() as session:
        states = set(session.scalars(select(Claim.state)))
        assert states >= EVERY_STATE, EVERY_STATE - states

        period = session.scalars(select(Period).where(Period.collected_at.is_not(None))).one()
        assert period.state == "paid" and period.failed_fen
        declined = session.scalars(
            select(Account.id).where(Account.phone == demo.declined_phone)
        ).one()
        failures = session.scalars(select(CollectionFailure.payer_account_id)).all()
        assert failures == [declined]

        jury = session.scalars(select(JuryCase).where(JuryCase.status == "open")).one()
        claim = session.get_one(Claim, jury.claim_id)
        rules = rules_of(session, claim.plan_id, claim.plan_version)
        today = local_date(ctx.clock.now(), rules.zone)
        eligible = set(
            session.scalars(eligible_jurors(claim.plan_id, today, rules, claim.claimant_account_id))
        )
        seated = set(
            session.scalars(
                select(JurySeat.juror_account_id).where(JurySeat.jury_case_id == jury.id)
            )
        )
        # Every seated juror may still vote, and their votes alone reach a verdict.
        assert seated <= eligible
        assert decide(Tally(len(seated), 0), rules.jury, jury.seats).value == "approved"
        assert jury.closes_at is not None and jury.closes_at > ctx.clock.now()

        checkpoints = session.scalars(select(LogCheckpoint).order_by(LogCheckpoint.size)).all()
        assert len(checkpoints) >= 2
        assert all(c.published and c.cosigners == c.quorum == 2 for c in checkpoints)
        last_event: datetime | None = session.scalar(select(func.max(AuditEvent.occurred_at)))
    assert last_event is not None and last_event < ctx.clock.now()
    assert verify_subject_bundle(proof_bundle(ctx, "claim", claim.ref)).ok


def test_each_printed_login_opens_its_pages(
    ctx: ServiceContext, demo: DemoLogins, site: TestClient
) -> None:
    member = Browser(site)
    member.log_in(demo.member_phone, DEMO_PASSWORD)
    me = member.get("/me")
    assert me.status_code == 200 and "张*华" in me.text and "张*雨" in me.text
    assert me.text.count('class="pill good"') == 2  # both covered

    assert demo.juror_phone is not None
    juror = Browser(site)
    juror.log_in(demo.juror_phone, DEMO_PASSWORD)
    with ctx.reading() as session:
        jury_id = session.scalars(select(JuryCase.id).where(JuryCase.status == "open")).one()
    assert f"/jury/cases/{jury_id}" in juror.get("/jury").text
    assert juror.get(f"/jury/cases/{jury_id}").status_code == 200

    declined = Browser(site)
    declined.log_in(demo.declined_phone, DEMO_PASSWORD)
    assert 'class="pill bad"' in declined.get("/me").text  # suspended until the share is paid

    pages = {"operator": "/staff", "reviewer": "/staff", "investigator": "/staff"}
    pages["auditor"] = "/staff/reports"
    staff_phones = [*demo.staff.items(), ("reviewer", DEMO_APPROVER_PHONE)]
    for role, phone in staff_phones:
        with ctx.reading() as session:
            account = session.scalars(select(Account).where(Account.phone == phone)).one()
        assert account.role == Role(role)
        # The demo's staff scan a QR code at their first sign-in; the test's authenticator
        # holds a known secret instead.
        enrol_with_secret(ctx, account.id, STAFF_TOTP_SECRET)
        person = Browser(site)
        person.log_in(phone, DEMO_PASSWORD)
        assert person.get(pages[role]).status_code == 200, role

    # The public sees the witnessed checkpoint and can check a claim's proof against it.
    with ctx.reading() as session:
        paid_ref = session.scalars(select(Claim.ref).where(Claim.state == "paid")).one()
        size = session.scalar(select(func.max(LogCheckpoint.size)))
    transparency = site.get("/transparency").text
    assert "witness-1.demo.mutualaid" in transparency and str(size) in transparency
    assert site.get(f"/verify/claim/{paid_ref}").status_code == 200


def test_building_the_demo_again_changes_nothing(ctx: ServiceContext, demo: DemoLogins) -> None:
    before = _counts(ctx)

    again = seed_demo(ctx, TEST_LOG_KEY, crowd=20)

    assert not again.created
    assert again == DemoLogins(**{**_fields(demo), "created": False})
    assert _counts(ctx) == before


def _fields(logins: DemoLogins) -> dict[str, object]:
    return {name: getattr(logins, name) for name in DemoLogins.__slots__}


def test_the_printed_id_numbers_can_join(ctx: ServiceContext, demo: DemoLogins) -> None:
    adult, older, child = demo.sample_id_numbers
    # Phones outside the demo crowd's (139…).
    newcomer, neighbour = account(ctx, phone="13700000001"), account(ctx, phone="13700000002")
    for holder, number, relation in (
        (newcomer, adult, Relation.SELF),
        (newcomer, child, Relation.CHILD),
        (neighbour, older, Relation.SELF),
    ):
        request = EnrollmentRequest(
            "林小满", number, relation, HEALTHY, current_rules_sha256(ctx, "xhb-main")
        )
        assert enroll_member(ctx, holder, "xhb-main", request).state == "waiting"
