"""Web app tests: a TestClient on http://localhost (so the session cookie need not be Secure), and
helpers that log in and read a page's CSRF token the way a browser would."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from mutualaid.api.app import create_app
from mutualaid.db.models import Account
from mutualaid.domain.accounts import Role
from mutualaid.services.context import ServiceContext
from tests.factories import PASSWORD, account, publish_demo_plans

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
        return self.client.post(action, data={"csrf_token": csrf(page.text), **data},
                                follow_redirects=False, **kwargs)  # type: ignore[arg-type]

    def log_in(self, phone: str, password: str = PASSWORD) -> None:
        response = self.submit("/login", "/login", {"phone": phone, "password": password})
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
