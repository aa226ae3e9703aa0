"""Staff set up an authenticator after the password, get recovery codes once, then sign in with a code."""

from __future__ import annotations

import re

import pyotp
from fastapi.testclient import TestClient
from tests.api.calls import next_phone
from tests.factories import PASSWORD
from tests.web.conftest import Browser

from mutualaid.domain.accounts import Role
from mutualaid.services.accounts.accounts import register_account
from mutualaid.services.context import ServiceContext


def test_a_new_reviewer_enrols_then_signs_in_with_a_code(
    ctx: ServiceContext, client: TestClient
) -> None:
    phone = next_phone()
    register_account(ctx, phone, PASSWORD, role=Role.REVIEWER)
    browser = Browser(client)

    login = browser.submit("/login?lang=en", "/login", {"phone": phone, "password": PASSWORD})
    assert login.status_code == 303
    assert login.headers["location"].startswith("/second-factor/setup")
    # Not signed in yet: the staff console sends them to the login page.
    assert browser.get("/staff", follow_redirects=False).headers["location"].startswith("/login")

    setup = browser.get("/second-factor/setup")
    assert "otpauth://totp/" in setup.text and "<svg" in setup.text
    secret = re.search(r"data-secret>([A-Z2-7]+)<", setup.text)
    assert secret is not None
    code = pyotp.TOTP(secret.group(1)).at(ctx.clock.now().timestamp())

    wrong = browser.submit("/second-factor/setup", "/second-factor/setup", {"code": "000000"})
    assert wrong.status_code == 422
    assert "the code is wrong" in wrong.text

    done = browser.submit("/second-factor/setup", "/second-factor/setup", {"code": code})
    assert done.status_code == 200
    recovery = re.findall(r"<code>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</code>", done.text)
    assert len(recovery) == 10
    assert browser.get("/staff").status_code == 200


def test_an_enrolled_reviewer_is_asked_for_the_code(
    ctx: ServiceContext, client: TestClient
) -> None:
    from tests.factories import account, staff_code

    phone = next_phone()
    account(ctx, Role.REVIEWER, phone=phone)
    browser = Browser(client)
    login = browser.submit("/login", "/login", {"phone": phone, "password": PASSWORD})
    assert login.headers["location"].startswith("/second-factor?")
    page = browser.get("/second-factor")
    assert "验证器" in page.text
    signed_in = browser.submit("/second-factor", "/second-factor", {"code": staff_code(ctx)})
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/staff?ok=logged_in"


def test_the_code_page_without_a_password_step_is_refused(client: TestClient) -> None:
    browser = Browser(client)
    refused = browser.submit("/second-factor", "/second-factor", {"code": "123456"})
    assert refused.status_code == 422
    assert "请重新登录" in refused.text
