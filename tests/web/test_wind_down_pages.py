"""The staff page of how each plan stands with its end, in both languages, for operators and
auditors only."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from tests.builders.schemes import COVID
from tests.web.conftest import staff_browser

from mutualaid.domain.accounts import Role
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.context import ServiceContext
from mutualaid.services.plans.schemes import attach_scheme
from mutualaid.services.wind_down.wind_down import announce_end


def test_an_operator_sees_the_announced_end_and_the_schemes_in_chinese(
    ctx: ServiceContext, client: TestClient
) -> None:
    attach_scheme(ctx, SYSTEM_ACTOR, "xhb-main", COVID)
    announce_end(ctx, SYSTEM_ACTOR, "xhb-main", date(2026, 4, 15), "成员不足")
    browser, _ = staff_browser(ctx, client, Role.OPERATOR)
    response = browser.get("/staff/wind-down")
    assert response.status_code == 200, response.text
    page = response.text
    assert 'href="/staff/wind-down"' in page  # in the staff navigation
    for text in (
        "计划终止",
        "终止中：不再接受新成员",
        "2026年4月15日",
        "2026年10月11日",
        "运营方（停止分摊）",
        "新冠肺炎专项保障",
    ):
        assert text in page, text


def test_an_auditor_reads_it_in_english_and_a_reviewer_is_refused(
    ctx: ServiceContext, client: TestClient
) -> None:
    browser, _ = staff_browser(ctx, client, Role.AUDITOR)
    page = browser.get("/staff/wind-down?lang=en").text
    assert "Plan end" in page and "Open claims" in page
    reviewer, _ = staff_browser(ctx, client, Role.REVIEWER)
    assert reviewer.get("/staff/wind-down").status_code == 403
