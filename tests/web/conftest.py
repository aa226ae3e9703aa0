"""Web app tests: a TestClient on http://localhost (so the session cookie need not be Secure), and
helpers that log in and read a page's CSRF token the way a browser would."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from tests.factories import (
    PASSWORD,
    account,
    enroll,
    publish_demo_plans,
    resident_id,
    staff_code,
)

from mutualaid.api.app import create_app
from mutualaid.clock import FixedClock
from mutualaid.db.models import Account
from mutualaid.domain.accounts import Role
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.publicity import run_publicity
from mutualaid.services.claims.review import (
    assign_investigation,
    file_investigation_report,
    start_review,
)
from mutualaid.services.context import ServiceContext

_TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def csrf(html: str) -> str:
    match = _TOKEN.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


class Browser:
    """A TestClient that submits forms like a browser: GET the page, then POST with its token."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def get(self, url: str, **kwargs: object):  # type: ignore[no-untyped-def]
        return self.client.get(url, **kwargs)  # type: ignore[arg-type]

    def submit(self, page_url: str, action: str, data: dict[str, str], **kwargs: object):  # type: ignore[no-untyped-def]
        page = self.client.get(page_url)
        assert page.status_code == 200, page.text
        return self.client.post(
            action, data={"csrf_token": csrf(page.text), **data}, follow_redirects=False, **kwargs
        )  # type: ignore[arg-type]

    def log_in(self, phone: str, password: str = PASSWORD) -> None:
        response = self.submit("/login", "/login", {"phone": phone, "password": password})
        assert response.status_code == 303, response.text
        if response.headers["location"].startswith("/second-factor"):
            code = staff_code(self.client.app.state.ctx)  # type: ignore[attr-defined]
            response = self.submit("/second-factor", "/second-factor", {"code": code})
            assert response.status_code == 303, response.text


@pytest.fixture
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


@pytest.fixture
def client(ctx: ServiceContext, plans: None) -> Iterator[TestClient]:
    with TestClient(create_app(ctx), base_url="http://localhost") as test_client:
        yield test_client


@pytest.fixture
def browser(client: TestClient) -> Browser:
    return Browser(client)


def phone_of(ctx: ServiceContext, account_id: int) -> str:
    with ctx.reading() as session:
        row = session.get(Account, account_id)
        assert row is not None
        return row.phone


@pytest.fixture
def member_browser(ctx: ServiceContext, client: TestClient) -> Browser:
    actor = account(ctx, Role.MEMBER)
    browser = Browser(client)
    browser.log_in(phone_of(ctx, actor.account_id))
    return browser


@dataclass(frozen=True)
class PublishedCase:
    member: Actor
    membership_id: int
    ref: str
    full_name: str
    id_number: str
    hospital: str
    reviewer: Actor
    investigator: Actor
    approver: Actor


def published_case(
    ctx: ServiceContext,
    clock: FixedClock,
    *,
    name: str = "欧阳明华",
    hospital: str = "杭州市第一人民医院",
) -> PublishedCase:
    """A member covered for 200 days whose claim was investigated, approved by someone else and
    is now in publicity (the clock is moved to the publicity day)."""
    from mutualaid.services.claims.review import decide_claim

    member = account(ctx)
    id_number = resident_id(date(1988, 4, 2))
    now = clock.now()
    clock.set(now - timedelta(days=200))
    membership = enroll(ctx, member, date(1988, 4, 2), name=name, id_number=id_number)
    clock.set(now)
    claim = report_claim(
        ctx, member, ClaimReport(membership.id, "CI01", now.date() - timedelta(days=3), hospital)
    )
    reviewer, approver = account(ctx, Role.REVIEWER), account(ctx, Role.REVIEWER)
    investigator = account(ctx, Role.INVESTIGATOR)
    operator = account(ctx, Role.OPERATOR)
    start_review(ctx, reviewer, claim.ref)
    assign_investigation(ctx, reviewer, claim.ref, investigator.account_id)
    file_investigation_report(ctx, investigator, claim.ref, "confirmed", "approve")
    decided = decide_claim(ctx, approver, claim.ref, approve=True)
    assert decided.publicity_on is not None
    clock.set(datetime.combine(decided.publicity_on, time(9), tzinfo=ZoneInfo("Asia/Shanghai")))
    run_publicity(ctx, claim.plan_code, operator)
    return PublishedCase(
        member,
        membership.id,
        claim.ref,
        name,
        id_number,
        hospital,
        reviewer,
        investigator,
        approver,
    )


def staff_browser(ctx: ServiceContext, client: TestClient, role: Role) -> tuple[Browser, int]:
    actor = account(ctx, role)
    browser = Browser(client)
    browser.log_in(phone_of(ctx, actor.account_id))
    return browser, actor.account_id
