"""The operator's report page: every section with its charts (inline SVG) and tables, in both
languages, for operators and auditors only."""

from __future__ import annotations

import re
from xml.etree import ElementTree

from fastapi.testclient import TestClient
from tests.builders.reports import build_population
from tests.web.conftest import staff_browser

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.services.context import ServiceContext

URL = "/staff/reports?plan=xhb-main&from_on=2026-01-01&to_on=2026-03-01"


def svgs(html: str) -> list[ElementTree.Element]:
    return [
        ElementTree.fromstring(svg)
        for svg in re.findall(r"<svg class=\"chart\".*?</svg>", html, flags=re.S)
    ]


def test_an_operator_sees_every_section_with_charts_and_tables_in_chinese(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    build_population(ctx, clock)
    browser, _ = staff_browser(ctx, client, Role.OPERATOR)
    response = browser.get(URL)
    assert response.status_code == 200, response.text
    page = response.text
    assert 'href="/staff/reports"' in page  # in the staff navigation
    for heading in (
        "报表",
        "会员流动",
        "每人分摊",
        "病种",
        "省份",
        "从申请到决定",
        "异议与评审团",
        "各年龄段的公平性",
    ):
        assert heading in page, heading
    charts = svgs(page)
    assert len(charts) == 8  # flows, active, share, illness, age, province, decisions, fairness
    for chart in charts:
        assert chart.get("role") == "img" and chart.get("aria-label")
        assert chart.get("viewBox", "").startswith("0 0 420 ")  # scales to the phone's width
    assert "浙江" in page and "¥300,000.00" in page
    assert "50.0%" in page  # overturned by a jury
    assert "¥124.48" in page  # investigation cost per case


def test_the_report_reads_in_english_and_an_auditor_may_see_it(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    build_population(ctx, clock)
    browser, _ = staff_browser(ctx, client, Role.AUDITOR)
    page = browser.get(URL + "&lang=en").text
    assert "Membership flows" in page and "Fairness by age band" in page
    assert "Zhejiang" in page and "Equal shares" in page


def test_a_backwards_window_is_shown_next_to_the_field_and_reviewers_are_refused(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    build_population(ctx, clock)
    browser, _ = staff_browser(ctx, client, Role.OPERATOR)
    response = browser.get("/staff/reports?plan=xhb-main&from_on=2026-03-02&to_on=2026-03-01")
    assert response.status_code == 422
    assert 'id="f-from_on-error"' in response.text and "报表的开始日期晚于结束日期" in response.text
    bad = browser.get("/staff/reports?plan=xhb-main&to_on=yesterday")
    assert bad.status_code == 422 and 'id="f-to_on-error"' in bad.text
    reviewer, _ = staff_browser(ctx, client, Role.REVIEWER)
    assert reviewer.get(URL).status_code == 403
    assert 'href="/staff/reports"' not in reviewer.get("/staff").text


def test_an_empty_plan_shows_the_page_without_charts(
    ctx: ServiceContext, client: TestClient
) -> None:
    browser, _ = staff_browser(ctx, client, Role.OPERATOR)
    page = browser.get("/staff/reports?plan=xhb-elderly-cancer").text
    assert "还没有成员。" in page and "此期间没有申请案例。" in page
    assert len(svgs(page)) == 1  # the fairness chart, from the model's rates


def test_chart_labels_are_escaped_and_negative_values_hang_below_zero() -> None:
    from mutualaid.web.charts import bar_groups, column_chart

    chart = ElementTree.fromstring(
        column_chart(
            "flows <b>", ["<script>", "b"], [("in", [3, None], "ok"), ("out", [-1, -2], "warn")]
        )
    )
    assert chart.findtext("title") == "flows <b>"
    texts = [t.text for t in chart.iter("text")]
    assert "<script>" in texts  # as text, not markup
    bars = {r.findtext("title"): r for r in chart.iter("rect") if r.findtext("title")}
    zero = float(next(chart.iter("line")).get("y1", "0"))
    assert float(bars["<script> · in: 3"].get("y", "0")) < zero  # above the zero line
    assert float(bars["b · out: -2"].get("y", "0")) == zero  # hangs below it
    assert "b · in" not in " ".join(bars)  # no value, no bar
    grouped = ElementTree.fromstring(
        bar_groups("fair", ["0-4"], [("uniform", [None], "warn")], reference=1)
    )
    assert "—" in [t.text for t in grouped.iter("text")]
