"""Key pages of a plan that has lived, on a phone (390×844) in Chinese, with screenshots in
test-artifacts/screenshots/ for people to read: what a member, a juror, the public and a reviewer
see. Each page is in Chinese, says times in the plan's zone, and fits the phone's width."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect
from tests.builders.lived_in import lived_in
from tests.e2e.conftest import SCREENSHOTS, LiveServer, Person, Shots
from tests.factories import publish_demo_plans
from tests.web.conftest import phone_of

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.services.juries.juries import jury_rounds

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: A time shown as UTC ("16:00 UTC") where the plan's zone is UTC+8.
UTC_TIME = re.compile(r"\d{1,2}:\d{2}\s*UTC(?![+-])")


def _phone_shot(person: Person, shots: Shots, name: str) -> None:
    folder = SCREENSHOTS / "chinese-screens"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{len(shots.taken) + 1:02d}-{name}-phone-zh.png"
    person.page.screenshot(path=str(path), full_page=True)
    shots.taken.append(path)


def _check(person: Person) -> None:
    page = person.page
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    text = page.locator("main").inner_text()
    assert not UTC_TIME.search(text), UTC_TIME.search(text)
    assert "Asia/Shanghai" not in text
    overflow = page.evaluate(
        "() => document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth"
    )
    assert overflow <= 1, f"{page.url} is {overflow}px wider than the phone"


def test_key_pages_read_in_chinese_on_a_phone(
    chromium: Browser, live_server: LiveServer, clock: FixedClock
) -> None:
    ctx = live_server.ctx
    publish_demo_plans(ctx)
    world = lived_in(ctx, clock)
    jury_id = jury_rounds(ctx, world.rejected_ref)[0].id
    shots = Shots(SCREENSHOTS / "chinese-screens")
    for old in shots.folder.glob("*.png"):
        old.unlink()

    public = Person(chromium, live_server, "zh_CN", shots, "public")
    for name, path in (
        ("plan", "/plans/xhb-main"),
        ("period-notice", f"/plans/xhb-main/periods/{world.closed_on}"),
        ("publicity", "/plans/xhb-main/notices"),
        ("verify-case", f"/verify/claim/{world.publicity_ref}"),
    ):
        public.go(path)
        _check(public)
        _phone_shot(public, shots, name)
    expect(public.page.locator("main")).not_to_contain_text("checkpoint signatures")
    public.close()

    member = Person(chromium, live_server, "zh_CN", shots, "member")
    member.log_in(phone_of(ctx, world.accounts[Role.MEMBER].account_id))
    for name, path in (
        ("my-plans", "/me"),
        ("paid-claim", f"/claims/{world.paid_ref}"),
        ("statement", "/me/statement"),
        ("charge-proof", f"/me/statement/{world.member_membership_id}/{world.closed_on}"),
        ("jury-case", f"/jury/cases/{jury_id}"),
    ):
        member.go(path)
        _check(member)
        _phone_shot(member, shots, name)
    # A refusal is told by its code, with its values, next to its field.
    member.go("/plans/xhb-main/join")
    member.page.fill("#f-full_name", "欧阳小明")
    member.page.fill("#f-id_number", "11010519491231002X"[:17] + "1")
    member.page.check("#f-rules_sha256")
    member.submit("form[action='/plans/xhb-main/join']")
    expect(member.page.locator("#f-id_number-error")).to_contain_text("校验位")
    _check(member)
    _phone_shot(member, shots, "join-refused")
    member.close()

    reviewer = Person(chromium, live_server, "zh_CN", shots, "reviewer")
    reviewer.log_in(phone_of(ctx, world.accounts[Role.REVIEWER].account_id))
    reviewer.go(f"/staff/claims/{world.rejected_ref}")
    _check(reviewer)
    expect(reviewer.page.locator("main")).not_to_contain_text("#")
    _phone_shot(reviewer, shots, "case-file")
    reviewer.close()
    assert len(shots.taken) == 11
