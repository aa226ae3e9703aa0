"""What a member on a cheap phone and a rural network meets: no JavaScript, a connection that drops
in the middle of an upload, a keyboard instead of a mouse."""

from __future__ import annotations

import re
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Route, expect
from tests.e2e.conftest import PHONE, LiveServer, Shots
from tests.factories import PASSWORD, covered_member, publish_demo_plans, resident_id
from tests.web.conftest import phone_of

from mutualaid.clock import FixedClock
from mutualaid.services.context import ServiceContext

pytestmark = pytest.mark.e2e

SHANGHAI = ZoneInfo("Asia/Shanghai")
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000") + bytes(600_000) + b"\xff\xd9"


def test_the_core_member_flow_works_without_javascript(
    ctx: ServiceContext,
    clock: FixedClock,
    chromium: Browser,
    live_server: LiveServer,
    shots: Shots,
) -> None:
    publish_demo_plans(ctx)
    context = chromium.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_server.url}/register")
    page.fill("#f-phone", "13966667777")
    page.fill("#f-password", PASSWORD)
    page.fill("#f-password_again", PASSWORD)
    page.click("form[action='/register'] button[type=submit]")
    expect(page).to_have_url(re.compile(r"/me\?ok=registered$"))
    page.goto(f"{live_server.url}/plans/xhb-main/join")
    page.fill("#f-full_name", "李四")
    page.fill("#f-id_number", resident_id(date(1992, 8, 8)))
    for radio in page.locator("input[type=radio][value=no]").all():
        radio.check()
    page.check("#f-rules_sha256")
    page.click("form[action='/plans/xhb-main/join'] button[type=submit]")
    expect(page).to_have_url(re.compile(r"/me\?ok=enrolled$"))
    shots(page, "no-js-enrolled")
    # An accident in the waiting period qualifies: report it and add the photo in one request.
    page.goto(f"{live_server.url}/claims/new")
    page.select_option("#f-illness_code", "CI05")
    page.fill("#f-diagnosed_on", clock.now().astimezone(SHANGHAI).date().isoformat())
    page.fill("#f-hospital", "县医院")
    page.check("input[name=accident]")
    page.click("form[action='/claims/new'] button[type=submit]")
    expect(page).to_have_url(re.compile(r"/claims/C.+\?ok=claim_reported$"))
    page.set_input_files(
        "#f-file", files=[{"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": JPEG}]
    )
    page.fill("#f-label", "诊断证明")
    page.click("form#upload button[type=submit]")
    expect(page.locator("#evidence-list li")).to_have_count(1)
    shots(page, "no-js-claim-with-evidence")
    context.close()


def test_an_upload_resumes_after_the_connection_drops(
    ctx: ServiceContext,
    clock: FixedClock,
    chromium: Browser,
    live_server: LiveServer,
    shots: Shots,
) -> None:
    publish_demo_plans(ctx)
    member, membership = covered_member(ctx, clock)
    context = chromium.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(f"{live_server.url}/login?lang=en")
    page.fill("#f-phone", phone_of(ctx, member.account_id))
    page.fill("#f-password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.goto(f"{live_server.url}/claims/new?membership={membership.id}")
    page.select_option("#f-illness_code", "CI01")
    page.fill("#f-diagnosed_on", (clock.now().date() - timedelta(days=3)).isoformat())
    page.fill("#f-hospital", "County hospital")
    page.click("form[action='/claims/new'] button[type=submit]")
    expect(page).to_have_url(re.compile(r"ok=claim_reported$"))
    pieces: list[str] = []

    def drop_the_second_piece(route: Route) -> None:
        pieces.append(route.request.url)
        if len(pieces) == 2:
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(re.compile(r".*/uploads/[^/?]+\?offset=\d+$"), drop_the_second_piece)
    page.set_input_files(
        "#f-file", files=[{"name": "record.jpg", "mimeType": "image/jpeg", "buffer": JPEG}]
    )
    page.fill("#f-label", "hospital record")
    page.click("form#upload button[type=submit]")
    expect(page.locator("#upload-status")).to_contain_text("Trying again")
    shots(page, "upload-retrying")
    expect(page).to_have_url(re.compile(r"ok=evidence_added"), timeout=20_000)
    expect(page.locator("#evidence-list li")).to_have_count(1)
    expect(page.locator("#evidence-list")).to_contain_text("586 KB")
    # Three pieces of 256 KiB, the second one sent twice.
    offsets = [int(url.rsplit("=", 1)[1]) for url in pieces]
    assert offsets == [0, 262144, 262144, 524288]
    shots(page, "upload-resumed")
    context.close()


def test_a_member_logs_in_with_the_keyboard_alone(
    ctx: ServiceContext,
    clock: FixedClock,
    chromium: Browser,
    live_server: LiveServer,
) -> None:
    publish_demo_plans(ctx)
    member, _ = covered_member(ctx, clock)
    context = chromium.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(f"{live_server.url}/login")
    page.keyboard.press("Tab")
    expect(page.locator("a.skip")).to_be_focused()
    page.locator("#f-phone").focus()
    page.keyboard.type(phone_of(ctx, member.account_id))
    page.keyboard.press("Tab")
    expect(page.locator("#f-password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/me\?ok=logged_in$"))
    context.close()
