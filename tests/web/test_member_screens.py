"""What members expect and did not find (issue 18): what a plan is worth from live data, a claim's
progress with its documents, dates and dispute deadline, a household statement against the annual
cap with the charge proof in plain words, and tables that scroll on a phone. Both languages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.factories import (
    LOCK_MARCH_7,
    MARCH_7,
    TEST_LOG_KEY,
    account,
    approved_claim,
    close_on,
    covered_member,
    join_at,
    members,
)
from tests.web.conftest import Browser, phone_of

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import RejectionReason
from mutualaid.domain.errors import DomainError
from mutualaid.domain.memberships import Relation
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.review import decide_claim, start_review
from mutualaid.services.context import ServiceContext
from mutualaid.services.juries.panels import dispute_rejection
from mutualaid.services.transparency.checkpoints import LogConfig, publish_checkpoint

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "mutualaid" / "web" / "templates"


def _one_closed_period(ctx: ServiceContext, clock: FixedClock) -> list[tuple[Actor, object]]:
    """Three members, one approved case of ¥10 shared in the period of 7 March 2026."""
    people = members(ctx, clock, 3)
    approved_claim(ctx, people[0][1].id, 1000, LOCK_MARCH_7 - timedelta(days=1))  # type: ignore[attr-defined]
    close_on(ctx, clock, MARCH_7)
    return people


def test_the_landing_page_says_what_the_plan_is_worth_from_live_data(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    _one_closed_period(ctx, clock)
    zh = client.get("/").text
    assert "这个计划能给您什么保障" in zh
    assert "患大病最高可获¥300,000.00互助金" in zh
    assert "1人（共¥10.00互助金）" in zh  # the approved case
    assert "90天（意外导致的疾病从第一天起即可保障）" in zh
    # The per-case cap (¥0.10) limits the share of the one case; the year so far is that share.
    assert "¥0.10（2026年3月7日）" in zh
    assert "¥0.10（上限¥188.00）" in zh
    assert 'href="/plans/xhb-main#illnesses"' in zh
    en = client.get("/plans/xhb-main?lang=en").text
    assert "What the plan is worth" in en and "Up to ¥300,000.00 for a critical illness" in en
    assert "1 person (¥10.00 in aid)" in en
    assert "¥0.10 (March 7, 2026)" in en and "¥0.10 of at most ¥188.00" in en
    assert re.search(r"100 illnesses</a>", en) and 'id="illnesses"' in en
    # The severe and mild bands split ages differently; each row says both for its ages.
    rows = re.findall(
        r"<td>(\d+ to \d+)</td>\s*<td[^>]*>([^<]+)</td>\s*<td[^>]*>([^<]+)</td>",
        en.split('class="worth"')[1].split("<h2>")[0],  # up to the next section
    )
    assert rows == [
        ("0 to 39", "¥300,000.00", "¥50,000.00"),
        ("40 to 59", "¥100,000.00", "¥50,000.00"),
    ]


def _reported_claim(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> tuple[Browser, str]:
    member, membership = covered_member(ctx, clock)
    browser = Browser(client)
    browser.log_in(phone_of(ctx, member.account_id))
    claim = report_claim(
        ctx,
        member,
        ClaimReport(membership.id, "CI01", clock.now().date() - timedelta(days=3), "医院"),
    )
    return browser, claim.ref


def test_a_claim_page_shows_the_steps_the_documents_and_the_dates_to_expect(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    browser, ref = _reported_claim(ctx, clock, client)  # reported on 1 March 2026
    zh = browser.get(f"/claims/{ref}").text
    steps = re.findall(r'<li class="(\w+)"', zh.split('class="stepper"')[1].split("</ol>")[0])
    assert steps == ["done", "current", "todo", "todo", "todo"]
    assert 'aria-current="step"' in zh
    for text in ("已提交", "审核", "公示", "异议截止", "发放互助金", "预计2026年3月31日前"):
        assert text in zh
    # Review within 30 days; published on 7 April; objections until 10 April 00:00; shared on
    # 21 April, collected on the 28th, paid within 7 days.
    assert "2026年4月7日" in zh and "2026年4月10日 00:00（UTC+8）" in zh and "2026年5月5日" in zh
    assert "患病成员的身份证（正反两面）" in zh and "医院出具的诊断证明书或病理报告" in zh
    en = browser.get(f"/claims/{ref}?lang=en").text
    assert "Where your claim is" in en and "expected by March 31, 2026" in en
    assert "Documents needed" in en and "The ill member&#39;s ID card (both sides)" in en
    assert "Objections close at" in en and "May 5, 2026" in en


def test_a_rejected_claim_can_be_disputed_only_until_the_deadline(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    browser, ref = _reported_claim(ctx, clock, client)
    reviewer = account(ctx, Role.REVIEWER)
    start_review(ctx, reviewer, ref)
    decide_claim(
        ctx,
        reviewer,
        ref,
        approve=False,
        reason_code=RejectionReason.WAITING_PERIOD,
        note="等待期内",
    )
    zh = browser.get(f"/claims/{ref}").text
    assert "您可以在2026年3月31日之前（含当天）提出申诉。" in zh
    assert "申诉截止日" in zh
    assert (
        "You can dispute until March 31, 2026 (that day included)."
        in browser.get(f"/claims/{ref}?lang=en").text
    )
    member_id = int(browser.get("/me/data.json").json()["account"]["id"])
    clock.set(datetime(2026, 3, 31, 16, 0, tzinfo=UTC))  # 1 April, 00:00 in Shanghai
    browser.log_in(phone_of(ctx, member_id))  # the session of a month ago has expired
    late = browser.get(f"/claims/{ref}?lang=zh_CN").text
    assert (
        "申诉期限已于2026年3月31日结束。" in late
        and 'action="/claims/' + ref + '/dispute"' not in late
    )
    refused = browser.client.post(
        f"/claims/{ref}/dispute",
        data={
            "csrf_token": re.findall(r'name="csrf_token" value="([0-9a-f]+)"', late)[0],
            "reason": "不同意",
        },
    )
    assert refused.status_code == 422
    assert "申诉期限已过：被拒绝的申请只能在2026年3月31日之前（含当天）申诉" in refused.text
    with pytest.raises(DomainError) as error:
        dispute_rejection(ctx, Actor(member_id, Role.MEMBER), ref, "too late?")
    assert error.value.code == "dispute_too_late"


def test_the_statement_shows_the_household_the_year_against_the_cap_and_the_proof_in_words(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    holder, own = join_at(ctx, clock, datetime(2025, 6, 1, tzinfo=UTC))
    _, spouse = join_at(ctx, clock, datetime(2025, 6, 1, tzinfo=UTC), holder, Relation.SPOUSE)
    _one_closed_period(ctx, clock)
    browser = Browser(client)
    browser.log_in(phone_of(ctx, holder.account_id))
    zh = browser.get("/me/statement").text
    household = zh.split('id="household"')[1].split("</section>")[0]
    assert "您的家庭" in household and "<dd>2</dd>" in household
    assert "今年已分摊</dt><dd>¥0.20" in household  # two people, ¥0.10 each
    assert "2026年" in zh and "¥0.10（上限¥188.00）" in zh
    assert "每人每个自然年最多分摊¥188.00" in zh
    assert "点击“核对”，可借助公开日志证明" in zh  # the word of the link next to each charge
    en = browser.get("/me/statement?lang=en").text
    assert "Your household" in en and "¥0.10 of at most ¥188.00" in en
    publish_checkpoint(ctx, LogConfig(TEST_LOG_KEY))
    for lang, words, hashes in (
        ("zh_CN", "这项核验证明了什么（通俗说明）", "Merkle"),
        ("en", "What this check proves, in plain words", "Charges root"),
    ):
        page = browser.get(f"/me/statement/{own.id}/{MARCH_7}?lang={lang}").text
        assert words in page
        assert page.index(words) < page.index("<code>", page.index(words))
        assert lang == "zh_CN" or page.index(words) < page.index(hashes)
    assert spouse.id != own.id


def test_every_table_scrolls_inside_its_own_box_on_a_phone() -> None:
    unwrapped = []
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        for match in re.finditer(r"<table", text):
            if not text[: match.start()].rstrip().endswith('<div class="table-wrap" tabindex="0">'):
                unwrapped.append(
                    f"{path.relative_to(TEMPLATES)}:{text[: match.start()].count(chr(10)) + 1}"
                )
    assert not unwrapped, f'wrap these in <div class="table-wrap" tabindex="0">: {unwrapped}'
