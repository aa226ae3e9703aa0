"""The operator console's forecast page: a form, percentile charts as inline SVG, a CSV download."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from tests.factories import members
from tests.web.conftest import staff_browser

from mutualaid.clock import FixedClock
from mutualaid.domain.accounts import Role
from mutualaid.services.context import ServiceContext

RUN = (
    "/staff/simulate?run=1&plan=xhb-main&start=launch&periods=6&scenarios=3&seed=7&ramp=small"
    "&churn=1.5"
)


def test_an_operator_runs_a_forecast_and_sees_three_charts_and_a_csv_link_in_chinese(
    ctx: ServiceContext, client: TestClient
) -> None:
    browser, _ = staff_browser(ctx, client, Role.OPERATOR)
    form = browser.get("/staff/simulate")
    assert form.status_code == 200
    assert 'href="/staff/simulate"' in form.text  # the staff nav links to it
    assert "运行预测" in form.text and "<svg" not in form.text
    page = browser.get(RUN)
    assert page.status_code == 200, page.text
    assert page.text.count('<svg class="chart"') == 3
    assert "每人分摊（元）" in page.text
    assert "公示的案例" in page.text
    assert 'value="7"' in page.text  # the form keeps what was asked
    assert "/staff/simulate/periods.csv?" in page.text


def test_the_csv_is_the_same_forecast_every_time_for_the_same_seed(
    ctx: ServiceContext, client: TestClient
) -> None:
    browser, _ = staff_browser(ctx, client, Role.AUDITOR)
    url = RUN.replace("/staff/simulate?", "/staff/simulate/periods.csv?")
    first, second = browser.get(url), browser.get(url)
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/csv")
    assert first.content == second.content
    rows = list(csv.DictReader(io.StringIO(first.text)))
    assert len(rows) == 6
    assert [row["period"] for row in rows] == ["1", "2", "3", "4", "5", "6"]
    other = browser.get(url.replace("seed=7", "seed=8"))
    assert other.content != first.content


def test_too_many_scenarios_are_refused_next_to_the_field_in_english(
    ctx: ServiceContext, client: TestClient
) -> None:
    browser, _ = staff_browser(ctx, client, Role.OPERATOR)
    page = browser.get(RUN.replace("scenarios=3", "scenarios=5000") + "&lang=en")
    assert page.status_code == 422
    assert "scenarios must be between 1 and 200" in page.text
    assert 'id="f-scenarios-error"' in page.text
    assert 'value="5000"' in page.text


def test_members_cannot_open_the_forecast_page(ctx: ServiceContext, client: TestClient) -> None:
    browser, _ = staff_browser(ctx, client, Role.MEMBER)
    assert browser.get("/staff/simulate").status_code in (403, 404)


def test_a_forecast_starts_from_the_plans_members_today_by_default(
    ctx: ServiceContext, client: TestClient, clock: FixedClock
) -> None:
    members(ctx, clock, 6, datetime(2025, 6, 1, 4, tzinfo=UTC))
    browser, _ = staff_browser(ctx, client, Role.OPERATOR)
    form = browser.get("/staff/simulate")
    assert 'name="start" value="today" checked' in form.text
    assert "data-running" in form.text  # a progress line shows while it runs
    page = browser.get("/staff/simulate?run=1&plan=xhb-main&periods=6&scenarios=3&seed=7")
    assert page.status_code == 200, page.text
    assert "起点：2026年3月1日的计划" in page.text or "起点：2026-03-01的计划" in page.text
    assert "今天的成员" in page.text
    facts = page.text.split("今天的成员", 1)[1]
    assert facts.split("</dd>", 1)[0].endswith(">6")
    rows = list(
        csv.DictReader(
            io.StringIO(
                browser.get(
                    "/staff/simulate/periods.csv?run=1&plan=xhb-main&periods=6&scenarios=3&seed=7"
                ).text
            )
        )
    )
    assert 0 < int(rows[0]["members_p50"]) <= 6  # its own six members, not Xiang Hu Bao's millions


def test_the_elderly_plan_is_forecast_from_its_launch_without_an_error(
    ctx: ServiceContext, client: TestClient
) -> None:
    browser, _ = staff_browser(ctx, client, Role.OPERATOR)
    page = browser.get(
        "/staff/simulate?run=1&plan=xhb-elderly-cancer&start=launch&periods=6&scenarios=3&ramp=small"
    )
    assert page.status_code == 200, page.text
    assert page.text.count('<svg class="chart"') == 3


def test_a_plan_with_no_member_yet_is_forecast_from_today_as_an_empty_plan(
    ctx: ServiceContext, client: TestClient
) -> None:
    browser, _ = staff_browser(ctx, client, Role.OPERATOR)
    page = browser.get("/staff/simulate?run=1&plan=xhb-elderly-cancer&periods=4&scenarios=2")
    assert page.status_code == 200, page.text
    assert "今天的成员" in page.text
