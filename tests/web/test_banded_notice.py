"""The public period page of a period closed under a non-uniform sharing rule shows each age
band's share."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tests.builders.sharing_rules import population, two_cases, use_rule
from tests.factories import MARCH_7, close_on

from mutualaid.clock import FixedClock
from mutualaid.services.context import ServiceContext


def test_the_period_page_shows_the_share_of_each_age_band_and_the_checks_hold(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    use_rule(ctx, "conditional_mean")
    people = population(ctx, clock)
    two_cases(ctx, people)
    close_on(ctx, clock, MARCH_7)
    page = client.get("/plans/xhb-main/periods/2026-03-07")
    assert page.status_code == 200
    assert "按年龄段分摊" in page.text and "条件均值风险分摊" in page.text
    assert "<td>0–39</td><td>3</td>" in page.text and "<td>40–59</td><td>2</td>" in page.text
    assert "✗" not in page.text
    english = client.get("/plans/xhb-main/periods/2026-03-07?lang=en").text
    assert "Share by age band" in english and "108,000.00" in english


def test_the_period_page_shows_who_the_annual_cap_limited(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    from tests.integration.test_periods_sharing_rules import (
        MARCH_21,
        a_joiner_and_an_old_case_on_march_21,
        capped_population,
    )

    people = capped_population(ctx, clock, 12_000_000)
    close_on(ctx, clock, MARCH_7)
    a_joiner_and_an_old_case_on_march_21(ctx, clock, people)
    close_on(ctx, clock, MARCH_21)
    page = client.get("/plans/xhb-main/periods/2026-03-21").text
    assert "年度封顶：按组计算" in page
    assert "20,307.69" in page  # the young band's charge, capped: 120,000 − 99,692.31
    assert "✗" not in page


def test_the_page_and_the_api_show_each_band_s_fairness_ratio_under_the_compensation_rule(
    ctx: ServiceContext, clock: FixedClock, client: TestClient
) -> None:
    use_rule(ctx, "compensation")
    two_cases(ctx, population(ctx, clock))
    close_on(ctx, clock, MARCH_7)
    page = client.get("/plans/xhb-main/periods/2026-03-07").text
    assert "按各年龄段理赔补偿分摊" in page and "公平比率" in page
    assert "<td>0.99</td>" in page and "<td>1.02</td>" in page  # 9,905 and 10,214 bp
    assert "✗" not in page
    english = client.get("/plans/xhb-main/periods/2026-03-07?lang=en").text
    assert "Compensation of each band&#39;s claims" in english and "Fairness ratio" in english
    body = client.get("/api/v1/plans/xhb-main/periods/2026-03-07").json()
    assert body["sharing_rule"] == "compensation"
    assert [b["fairness_ratio_bp"] for b in body["bands"]] == [9_905, 10_214]
