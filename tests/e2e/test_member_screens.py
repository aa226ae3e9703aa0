"""A member's own screens in a real browser (issue 18): what the plan is worth, a claim's progress
with its documents and dates, the household statement and the charge proof in plain words.
Chinese on a phone (390×844, where the navigation is one row of tabs at the bottom and nothing
is wider than the screen) and English on a desktop (1280×800); screenshots in
test-artifacts/screenshots/<test>/."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Page, expect
from tests.e2e.conftest import DESKTOP, PHONE, LiveServer, Person, Shots
from tests.factories import (
    LOCK_MARCH_7,
    MARCH_7,
    TEST_LOG_KEY,
    approved_claim,
    close_on,
    join_at,
    members,
    publish_demo_plans,
)
from tests.web.conftest import phone_of

from mutualaid.clock import FixedClock
from mutualaid.domain.memberships import Relation
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.context import ServiceContext
from mutualaid.services.transparency.checkpoints import LogConfig, publish_checkpoint

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WORDS = {
    "zh_CN": {
        "worth": "这个计划能给您什么保障",
        "progress": "您的申请进度",
        "documents": "需要提交的材料",
        "household": "您的家庭",
        "in_words": "这项核验证明了什么（通俗说明）",
    },
    "en": {
        "worth": "What the plan is worth",
        "progress": "Where your claim is",
        "documents": "Documents needed",
        "household": "Your household",
        "in_words": "What this check proves, in plain words",
    },
}


def _fits_the_screen(page: Page, width: int) -> None:
    """Nothing makes the page wider than the screen (a wide table scrolls in its own box)."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def _tabs_in_one_row_at_the_bottom(page: Page) -> None:
    nav = page.locator("header nav")
    box = nav.bounding_box()
    assert box is not None
    assert box["height"] < 64, "the tabs wrap onto a second row"
    assert abs(box["y"] + box["height"] - PHONE["height"]) <= 2, "the tabs are not at the bottom"
    links = page.locator("header nav li")
    tops = {round(links.nth(i).bounding_box()["y"]) for i in range(links.count())}  # type: ignore[index]
    assert len(tops) == 1


@pytest.mark.parametrize(("lang", "size"), [("zh_CN", PHONE), ("en", DESKTOP)])
def test_a_member_sees_the_plans_worth_her_claims_progress_and_her_household_statement(
    ctx: ServiceContext,
    clock: FixedClock,
    live_server: LiveServer,
    chromium: Browser,
    shots: Shots,
    lang: str,
    size: dict[str, int],
) -> None:
    publish_demo_plans(ctx)
    holder, _ = join_at(ctx, clock, datetime(2025, 6, 1, tzinfo=UTC))
    _, spouse = join_at(ctx, clock, datetime(2025, 6, 1, tzinfo=UTC), holder, Relation.SPOUSE)
    people = members(ctx, clock, 3)
    approved_claim(ctx, people[0][1].id, 1000, LOCK_MARCH_7 - timedelta(days=1))
    close_on(ctx, clock, MARCH_7)
    publish_checkpoint(ctx, LogConfig(TEST_LOG_KEY))
    claim = report_claim(
        ctx, holder, ClaimReport(spouse.id, "CI01", date(2026, 3, 1), "杭州市第一人民医院")
    )
    words = WORDS[lang]
    member = Person(chromium, live_server, lang, shots, "member")
    page = member.page
    phone = size == PHONE

    def look(step: str) -> None:
        page.set_viewport_size(size)
        if phone:
            _tabs_in_one_row_at_the_bottom(page)
            _fits_the_screen(page, size["width"])
        slug = f"{len(shots.taken) + 1:02d}-{step}-{'phone' if phone else 'desktop'}-{lang}"
        path = shots.folder / f"{slug}.png"
        page.screenshot(path=str(path), full_page=True)
        shots.taken.append(path)

    try:
        page.set_viewport_size(size)
        member.go("/")
        expect(page.get_by_role("heading", name=words["worth"]).first).to_be_visible()
        look("landing")
        # "36 illnesses" opens the plan page with the list unfolded.
        page.locator('a[href="/plans/xhb-main#illnesses"]').click()
        expect(page.locator("#illnesses + details")).to_have_attribute("open", "")
        member.go("/plans/xhb-main")
        look("plan")

        member.log_in(phone_of(ctx, holder.account_id))
        member.go(f"/claims/{claim.ref}")
        expect(page.get_by_role("heading", name=words["progress"])).to_be_visible()
        expect(page.locator(".stepper li")).to_have_count(5)
        expect(page.locator(".stepper li[aria-current=step]")).to_have_count(1)
        expect(page.get_by_role("heading", name=words["documents"])).to_be_visible()
        look("claim")

        member.go("/me/statement")
        expect(page.get_by_role("heading", name=words["household"])).to_be_visible()
        look("statement")
        member.go(f"/me/statement/{spouse.id}/{MARCH_7}")
        expect(page.get_by_role("heading", name=words["in_words"])).to_be_visible()
        look("charge-proof")
    finally:
        member.close()
