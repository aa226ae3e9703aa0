"""A new reviewer, on a 390 px phone in Chinese, sets up an authenticator and signs in with a code."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from playwright.sync_api import Browser, expect
from tests.e2e.conftest import PHONE, LiveServer, Shots
from tests.factories import PASSWORD

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.services.accounts.accounts import register_account
from mutualaid.services.context import ServiceContext

pytestmark = pytest.mark.e2e


def test_a_reviewer_enrols_totp_and_signs_in_with_a_code(
    chromium: Browser,
    live_server: LiveServer,
    ctx: ServiceContext,
    clock: FixedClock,
    shots: Shots,
) -> None:
    phone = "10000000301"
    register_account(ctx, phone, PASSWORD, role=Role.REVIEWER, display_name="审核员")
    context = chromium.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/login?lang=zh_CN")
        page.fill("#f-phone", phone)
        page.fill("#f-password", PASSWORD)
        with page.expect_navigation():
            page.locator("form[action='/login'] button[type=submit]").click()
        expect(page.locator("h1")).to_have_text("设置验证器")
        expect(page.locator(".qr svg")).to_be_visible()
        secret = page.locator("[data-secret]").inner_text()
        totp = pyotp.TOTP(secret)
        page.fill("#f-code", totp.at(clock.now().timestamp()))
        shots(page, "setup")
        with page.expect_navigation():
            page.locator("form[action='/second-factor/setup'] button[type=submit]").click()
        expect(page.locator("h1")).to_have_text("您的恢复码")
        expect(page.locator(".recovery-codes li")).to_have_count(10)
        shots(page, "recovery-codes")

        # Next day: password, then the code from the app.
        clock.advance(timedelta(days=1))
        context.clear_cookies()
        page.goto(f"{live_server.url}/login?lang=zh_CN")
        page.fill("#f-phone", phone)
        page.fill("#f-password", PASSWORD)
        with page.expect_navigation():
            page.locator("form[action='/login'] button[type=submit]").click()
        expect(page.locator("h1")).to_have_text("验证器动态码")
        page.fill("#f-code", totp.at(clock.now().timestamp()))
        shots(page, "code")
        with page.expect_navigation():
            page.locator("form[action='/second-factor'] button[type=submit]").click()
        assert page.url.startswith(f"{live_server.url}/staff")
    finally:
        context.close()
