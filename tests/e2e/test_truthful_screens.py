"""Issue #18 in a real browser, in Chinese and English, at a phone and a desktop size (screenshots
in test-artifacts/screenshots/): the juror's case file without a name or number, coverage cards
in the waiting period and when suspended, objections offered only where they are taken, the two
calendars on the notices page, and an unknown path answered with a page."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, expect
from tests.builders.case_files import ID_NUMBER, NAME, covered, disputed_case
from tests.builders.juries import RIGHT_ANSWERS
from tests.e2e.conftest import LiveServer, Person, Shots
from tests.factories import account, enroll, publish_demo_plans
from tests.web.conftest import phone_of, published_case

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.services.claims.publicity import run_publicity
from mutualaid.services.collections.files import import_collection_results, results_file_text
from mutualaid.services.context import ServiceContext
from mutualaid.services.juries.certification import certify_juror
from mutualaid.services.periods.close import close_period

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHANGHAI = ZoneInfo("Asia/Shanghai")

WORDS = {
    "zh_CN": {
        "rejected_why": "拒赔的原因",
        "removed": "[姓名已隐去]",
        "accidents_only": "只保障意外导致的疾病",
        "suspended": "保障已暂停",
        "own": "这是您家庭自己的申请",
        "calendars": "两个日历",
        "not_found": "未找到",
    },
    "en": {
        "rejected_why": "Why the claim was rejected",
        "removed": "[name removed]",
        "accidents_only": "Only illness caused by an accident",
        "suspended": "Cover is suspended",
        "own": "This is a claim of your own family",
        "calendars": "Two calendars",
        "not_found": "Not found",
    },
}


@pytest.fixture(params=["zh_CN", "en"])
def lang(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def people(
    chromium: Browser, live_server: LiveServer, lang: str, shots: Shots
) -> Iterator[Callable[[str], Person]]:
    made: dict[str, Person] = {}

    def person(name: str) -> Person:
        made[name] = Person(chromium, live_server, lang, shots, name)
        return made[name]

    yield person
    for p in made.values():
        p.close()


def test_a_juror_reads_a_redacted_case_file(
    ctx: ServiceContext,
    clock: FixedClock,
    live_server: LiveServer,
    people: Callable[[str], Person],
    lang: str,
) -> None:
    words = WORDS[lang]
    publish_demo_plans(ctx)
    claimant, ref = disputed_case(ctx, clock)
    juror_actor, _ = covered(ctx, clock, date(1985, 1, 1))
    assert certify_juror(ctx, juror_actor, RIGHT_ANSWERS).passed

    juror = people("juror")
    juror.log_in(phone_of(ctx, juror_actor.account_id))
    juror.go("/jury")
    juror.page.locator("a[href^='/jury/cases/']").first.click()
    expect(juror.page.locator("#case-file")).to_contain_text(words["rejected_why"])
    expect(juror.page.locator("#case-file")).to_contain_text(words["removed"])
    text = juror.page.locator("main").inner_text()
    for secret in (NAME, ID_NUMBER, phone_of(ctx, claimant.account_id)):
        assert secret not in text
    juror.shot("case-file")

    member = people("claimant")
    member.log_in(phone_of(ctx, claimant.account_id))
    member.go(f"/claims/{ref}")
    expect(member.page.locator("#jury-rounds")).to_be_visible()
    member.shot("claim-with-jury-rounds")


def test_cards_objections_calendars_and_not_found(
    ctx: ServiceContext,
    clock: FixedClock,
    live_server: LiveServer,
    people: Callable[[str], Person],
    lang: str,
) -> None:
    words = WORDS[lang]
    publish_demo_plans(ctx)
    case = published_case(ctx, clock)
    waiting = account(ctx)
    enroll(ctx, waiting, date(1991, 1, 1))

    newcomer = people("waiting-member")
    newcomer.log_in(phone_of(ctx, waiting.account_id))
    newcomer.go("/me")
    expect(newcomer.page.locator(".waiting-cover")).to_contain_text(words["accidents_only"])
    newcomer.shot("waiting-card")
    newcomer.go("/plans/xhb-main/notices")
    expect(newcomer.page.locator("#two-calendars")).to_contain_text(words["calendars"])
    expect(newcomer.page.locator(f"a[href='/claims/{case.ref}/objection']")).to_have_count(0)
    newcomer.shot("notices-two-calendars")

    claimant = people("claimant")
    claimant.log_in(phone_of(ctx, case.member.account_id))
    claimant.go(f"/claims/{case.ref}/objection")
    expect(claimant.page.locator("#objection-refused")).to_contain_text(words["own"])
    expect(claimant.page.locator("textarea")).to_have_count(0)
    claimant.shot("own-case-no-objection")

    # Publicity ends, the period closes, the member's debit fails: her card is suspended.
    operator = account(ctx, Role.OPERATOR)
    publicity_on = clock.now().date()
    clock.set(datetime.combine(publicity_on + timedelta(days=4), time(9), tzinfo=SHANGHAI))
    run_publicity(ctx, "xhb-main", operator)
    next_day = (
        date(publicity_on.year, publicity_on.month, 21)
        if publicity_on.day == 7
        else date(publicity_on.year + (publicity_on.month == 12), publicity_on.month % 12 + 1, 7)
    )
    clock.set(datetime.combine(next_day, time(10), tzinfo=SHANGHAI))
    close_period(ctx, operator, "xhb-main", next_day)
    failed = results_file_text([(case.membership_id, "failed")])
    import_collection_results(ctx, operator, "xhb-main", next_day, failed.splitlines())
    claimant.go("/me")
    card = claimant.page.locator(".suspended-cover")
    expect(card).to_contain_text(words["suspended"])
    expect(card.locator(f"a[href='/me/statement#s-{case.membership_id}']")).to_be_visible()
    claimant.shot("suspended-card")

    claimant.go("/no/such/page")
    expect(claimant.page.locator("h1")).to_have_text(words["not_found"])
    claimant.shot("not-found")
