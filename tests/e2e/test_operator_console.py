"""The operator's and reviewer's console pages in a real browser: the report with its charts and
tables (also on a phone, in Chinese and in English), a claim's risk panel with feedback and the
linked-claims graph, the forecast with its CSV, and where each plan stands with its end."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect
from tests.e2e.conftest import PHONE, LiveServer, Person, Shots, staff_phone
from tests.factories import account, covered_member, enroll, publish_demo_plans

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import RejectionReason
from mutualaid.domain.money import format_yuan
from mutualaid.domain.risk import SIGNALS, ClaimLinks, SignalCode
from mutualaid.services.claims.evidence import add_evidence
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.publicity import run_publicity
from mutualaid.services.claims.review import (
    assign_investigation,
    decide_claim,
    file_investigation_report,
    start_review,
)
from mutualaid.services.context import ServiceContext
from mutualaid.services.periods.close import close_period

pytestmark = pytest.mark.e2e

SHANGHAI = ZoneInfo("Asia/Shanghai")
PLAN = "xhb-main"
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")

#: What the pages say, per language, where the test checks words rather than structure.
WORDS = {
    "zh_CN": {
        "reports": "报表",
        "members": "成员",
        "cases": "案例数",
        "joined": "加入人数",
        "reported": "申请的案例",
        "approved": "获批案例",
        "aid_approved": "已通过的互助金",
        "joined_chart": "每月加入与退出",
        "illness_chart": "按疾病统计案例",
        "shares_chart": "每期每人分摊",
        "ci01": "恶性肿瘤——重度",
    },
    "en": {
        "reports": "Reports",
        "members": "Members",
        "cases": "Cases",
        "joined": "Members joined",
        "reported": "Cases reported",
        "approved": "Cases approved",
        "aid_approved": "Aid approved",
        "joined_chart": "Joined and left each month",
        "illness_chart": "Cases by illness",
        "shares_chart": "Share per member in each period",
        "ci01": "Malignant tumour (severe)",
    },
}


def shanghai(day: date, hour: int = 9) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=SHANGHAI)


def money(fen: int) -> str:
    return format_yuan(fen, symbol=True, grouping=True)


def fact(page: Page, card: str, term: str) -> str:
    """The value next to a term in one of the summary cards."""
    section = page.locator("#summary section.card").filter(
        has=page.locator(f"h2:text-is('{card}')")
    )
    return section.locator(f"dt:text-is('{term}') + dd").inner_text().strip()


def no_sideways_scrolling(page: Page) -> None:
    width, inner = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    assert width <= inner + 1, f"the page scrolls sideways: {width} px in a {inner} px window"


@dataclass
class Population:
    members: int
    approved_payout_fen: int
    period_share_fen: int


def report_population(ctx: ServiceContext, clock: FixedClock) -> Population:
    """Four covered members and one who joins today; three claims (two malignant tumours, one
    heart attack): one approved through publicity, one rejected, one waiting; then the period of
    21 March closes with the approved case in it."""
    publish_demo_plans(ctx)
    people = [covered_member(ctx, clock, date(1970 + 8 * i, 5, 1)) for i in range(4)]
    enroll(ctx, account(ctx), date(1995, 1, 1))
    today = clock.now().astimezone(SHANGHAI).date()
    reviewer, approver = account(ctx, Role.REVIEWER), account(ctx, Role.REVIEWER)
    operator = account(ctx, Role.OPERATOR)
    refs = [
        report_claim(
            ctx,
            holder,
            ClaimReport(membership.id, illness, today - timedelta(days=3), "浙江省肿瘤医院"),
        ).ref
        for (holder, membership), illness in zip(people[:3], ("CI01", "CI01", "CI02"), strict=True)
    ]
    for ref in refs[:2]:
        start_review(ctx, reviewer, ref)
    # A desk investigation by the first reviewer; the second one decides (separated duties).
    assign_investigation(ctx, reviewer, refs[0], reviewer.account_id)
    file_investigation_report(ctx, reviewer, refs[0], "医院确认诊断", "approve")
    proposed = decide_claim(ctx, approver, refs[0], approve=True)
    decide_claim(
        ctx,
        approver,
        refs[1],
        approve=False,
        reason_code=RejectionReason.INSUFFICIENT_EVIDENCE,
        note="没有诊断证明",
    )
    assert proposed.publicity_on is not None
    clock.set(shanghai(proposed.publicity_on))
    run_publicity(ctx, PLAN, operator)
    clock.set(shanghai(proposed.publicity_on + timedelta(days=4)))
    assert run_publicity(ctx, PLAN, operator).approved == 1
    closing_day = date(2026, 3, 21)
    clock.set(shanghai(closing_day))
    period = close_period(ctx, operator, PLAN, closing_day)
    assert (period.member_count, period.case_count) == (5, 1)
    return Population(5, proposed.payout_fen, period.share_fen)


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_an_operator_reads_the_report_cards_charts_and_tables_on_a_phone_without_sideways_scrolling(
    ctx: ServiceContext,
    clock: FixedClock,
    chromium: Browser,
    live_server: LiveServer,
    shots: Shots,
    lang: str,
) -> None:
    words = WORDS[lang]
    seeded = report_population(ctx, clock)
    operator = Person(chromium, live_server, lang, shots, "operator")
    operator.log_in(staff_phone(ctx, Role.OPERATOR, "10000000201"))
    page = operator.go(f"/staff/reports?plan={PLAN}")
    expect(page.locator("h1")).to_have_text(words["reports"])

    assert fact(page, words["members"], words["joined"]) == str(seeded.members)
    assert fact(page, words["cases"], words["reported"]) == "3"
    assert fact(page, words["cases"], words["approved"]) == "1"
    assert fact(page, words["cases"], words["aid_approved"]) == money(seeded.approved_payout_fen)

    charts = page.locator("svg.chart[role=img]")
    expect(charts).to_have_count(8)
    for chart in charts.all():
        assert chart.get_attribute("aria-label")
        assert chart.locator("rect title").count() > 0, chart.get_attribute("aria-label")
        box = chart.bounding_box()
        assert box is not None and box.get("width", 0) > 300 and box.get("height", 0) > 50
    expect(page.get_by_role("img", name=words["joined_chart"])).to_be_visible()
    expect(page.get_by_role("img", name=words["shares_chart"])).to_be_visible()
    illness = page.get_by_role("img", name=words["illness_chart"])
    bars = illness.locator("rect title").all_text_contents()
    assert f"{words['ci01']} · {words['reported']}: 2" in bars
    assert f"{words['ci01']} · {words['approved']}: 1" in bars

    # The table under the illness chart: two malignant tumours reported, one approved, its aid.
    table = page.locator("#cases details").first
    row = table.locator("tbody tr").filter(has_text=words["ci01"])
    expect(row).to_be_hidden()
    table.locator("summary").click()
    expect(row).to_be_visible()
    expect(row.locator("td")).to_have_text(
        [words["ci01"], "2", "1", money(seeded.approved_payout_fen)]
    )
    # The closed period: five members charged, each the period's share.
    shares = page.locator("#shares details")
    shares.locator("summary").click()
    period_row = shares.locator("tbody tr").last
    expect(shares.locator("tbody tr")).to_have_count(1)
    expect(period_row.locator("td").nth(1)).to_have_text(str(seeded.members))
    expect(period_row.locator("td").nth(5)).to_have_text(money(seeded.period_share_fen))
    operator.shot("report")

    # On a phone (the shot put the phone size back), with every table open, nothing is wider
    # than the screen: charts scale down and wide tables scroll inside their own box.
    assert page.viewport_size == PHONE
    for details in page.locator("details").all():
        if details.get_attribute("open") is None:
            details.locator("summary").first.click()
    expect(page.locator("details:not([open])")).to_have_count(0)
    no_sideways_scrolling(page)
    operator.shot("report-tables-open")
    operator.close()


def test_a_reviewer_sees_why_a_claim_is_risky_marks_a_signal_useful_and_follows_the_link_graph(
    ctx: ServiceContext,
    clock: FixedClock,
    chromium: Browser,
    live_server: LiveServer,
    shots: Shots,
) -> None:
    publish_demo_plans(ctx)
    refs = []
    for _ in range(2):
        holder, membership = covered_member(ctx, clock)
        ref = report_claim(
            ctx,
            holder,
            ClaimReport(
                membership.id,
                "CI01",
                clock.now().date() - timedelta(days=2),
                "县人民医院",
                links=ClaimLinks(payee_account="6222021001234567"),
            ),
        ).ref
        add_evidence(ctx, holder, ref, [JPEG], "image/jpeg", "诊断证明")
        refs.append(ref)
    first, second = refs
    weights = {s.code: s.weight for s in SIGNALS}
    score = min(100, weights[SignalCode.SHARED_PAYEE] + weights[SignalCode.SAME_FILE])

    reviewer = Person(chromium, live_server, "zh_CN", shots, "reviewer")
    reviewer.log_in(staff_phone(ctx, Role.REVIEWER, "10000000202"))
    page = reviewer.go(f"/staff/claims/{second}")
    panel = page.locator("#risk")
    expect(panel).to_contain_text(f"风险评分 {score} / 100")
    expect(panel).to_contain_text("评分只提示先看哪里，从不拒绝申请。")
    payee = panel.locator(f"#signal-{SignalCode.SHARED_PAYEE}")
    expect(payee).to_contain_text("收款账户与其他家庭的申请相同")
    expect(payee).to_contain_text("收款账户也出现在另外 1 个家庭的申请中")
    expect(panel.locator(f"#signal-{SignalCode.SAME_FILE}")).to_contain_text(
        "证据文件与他人申请相同"
    )
    reviewer.shot("risk-panel")

    useful = payee.get_by_role("button", name="有用", exact=True)
    expect(useful).not_to_have_attribute("aria-pressed", "true")
    with page.expect_navigation():
        useful.click()
    useful = page.locator(f"#signal-{SignalCode.SHARED_PAYEE}").get_by_role(
        "button", name="有用", exact=True
    )
    expect(useful).to_have_attribute("aria-pressed", "true")
    expect(
        page.locator(f"#signal-{SignalCode.SHARED_PAYEE}").get_by_role(
            "button", name="没用", exact=True
        )
    ).not_to_have_attribute("aria-pressed", "true")
    reviewer.shot("feedback-recorded")

    page.get_by_role("link", name="关联申请（关系图）").click()
    graph = page.get_by_role("group", name=f"与 {second} 关联的申请")
    expect(graph).to_be_visible()
    other = graph.locator(f"a[href='/staff/claims/{first}']")
    expect(other).to_have_count(1)
    expect(other.locator("text")).to_contain_text(first)
    expect(page.locator("table tbody")).to_contain_text("payee")
    reviewer.shot("graph")
    with page.expect_navigation():
        other.locator("circle").click()
    expect(page).to_have_url(f"{live_server.url}/staff/claims/{first}")
    reviewer.close()

    # The operator's risk desk counts the reviewer's vote: the payee signal was found useful.
    operator = Person(chromium, live_server, "zh_CN", shots, "operator")
    operator.log_in(staff_phone(ctx, Role.OPERATOR, "10000000203"))
    desk = operator.go("/staff/risk")
    desk.select_option("#f-plan", PLAN)
    with desk.expect_navigation():
        desk.get_by_role("button", name="显示").click()
    row = desk.locator("tr").filter(has=desk.locator(f"code:text-is('{SignalCode.SHARED_PAYEE}')"))
    expect(row.locator("td").nth(2)).to_have_text("100%")
    operator.shot("risk-desk")
    operator.close()


def test_an_operator_runs_a_small_forecast_sees_its_charts_and_downloads_the_csv(
    ctx: ServiceContext,
    chromium: Browser,
    live_server: LiveServer,
    shots: Shots,
) -> None:
    publish_demo_plans(ctx)
    operator = Person(chromium, live_server, "zh_CN", shots, "operator")
    operator.log_in(staff_phone(ctx, Role.OPERATOR, "10000000204"))
    page = operator.go("/staff/simulate")
    expect(page.locator("svg.chart")).to_have_count(0)
    page.select_option("#f-plan", PLAN)
    page.fill("#f-periods", "12")
    page.fill("#f-scenarios", "20")
    page.fill("#f-seed", "7")
    operator.shot("form")
    with page.expect_navigation():
        page.get_by_role("button", name="运行预测").click()
    for title in ("分摊人数", "每人分摊（元）", "公示的案例"):
        chart = page.get_by_role("img", name=title)
        expect(chart).to_be_visible()
        expect(chart.locator("polyline")).to_have_count(1)
        assert len((chart.locator("polyline").get_attribute("points") or "").split()) == 12
    expect(page.locator("#f-seed")).to_have_value("7")
    result = page.locator("section[aria-labelledby=result-h] dl")
    expect(result.locator("dt:text-is('情景数') + dd")).to_have_text("20")
    expect(result.locator("dt:text-is('期次') + dd")).to_have_text("12")
    operator.shot("forecast")

    with page.expect_download() as download:
        page.get_by_role("link", name="下载数据（CSV）").click()
    assert download.value.suggested_filename == f"forecast-{PLAN}-seed7.csv"
    with open(download.value.path(), newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    assert header[:2] == ["period", "publicity_on"]
    assert {"members_p50", "share_fen_p50", "cases_p50"} <= set(header)
    assert [row[0] for row in body] == [str(n) for n in range(1, 13)]
    operator.close()


def test_an_operator_sees_each_plan_open_with_its_members_on_the_wind_down_page(
    ctx: ServiceContext,
    clock: FixedClock,
    chromium: Browser,
    live_server: LiveServer,
    shots: Shots,
) -> None:
    publish_demo_plans(ctx)
    covered_member(ctx, clock)
    covered_member(ctx, clock)
    operator = Person(chromium, live_server, "zh_CN", shots, "operator")
    operator.log_in(staff_phone(ctx, Role.OPERATOR, "10000000205"))
    page = operator.go("/staff/wind-down")
    expect(page.locator("h1")).to_have_text("计划终止")
    main = page.locator(f"section[aria-labelledby=end-{PLAN}]")
    expect(main.locator("dt:text-is('状态') + dd")).to_have_text("开放：接受新成员")
    expect(main.locator("dt:text-is('在册成员') + dd")).to_contain_text("2")
    expect(
        page.locator("section[aria-labelledby=end-xhb-elderly-cancer] dt:text-is('在册成员') + dd")
    ).to_contain_text("0")
    operator.shot("wind-down")
    operator.close()
