"""The operator's report pages: the figures of `mutualaid report` with charts drawn as inline SVG."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi.responses import HTMLResponse

from mutualaid.domain.errors import DomainError
from mutualaid.services.plans.plans import list_plans
from mutualaid.services.reports.reports import READERS, plan_report
from mutualaid.web.charts import bar_groups, column_chart
from mutualaid.web.i18n import N_
from mutualaid.web.pages import chosen_plan, page_router, render, render_form
from mutualaid.web.sessions import Page, PageState

router = page_router()

#: Refusals the service words without values, translated through the catalog.
MESSAGES = (N_("the report's first day is after its last day"), N_("not a date (YYYY-MM-DD)"))


def _ratio(value: float) -> str:
    return f"{value:.2f}"


def _days(value: float) -> str:
    return f"{value:.1f}"


def _day(page: PageState, name: str) -> date | None:
    raw = page.request.query_params.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise DomainError("invalid_date", "not a date (YYYY-MM-DD)", name) from None


@router.get("/staff/reports")
def reports(page: Page) -> HTMLResponse:
    actor = page.need(*READERS)
    plans = list_plans(page.ctx)
    params = page.request.query_params
    code = chosen_plan(page, plans)
    shown: dict[str, Any] = {
        "plans": plans,
        "plan_code": code,
        "report": None,
        "filters": {"from_on": params.get("from_on", ""), "to_on": params.get("to_on", "")},
        "column_chart": column_chart,
        "bar_groups": bar_groups,
        "ratio": _ratio,
        "days": _days,
    }
    if not code:
        return render(page, "staff/reports.html", **shown)
    try:
        report = plan_report(
            page.ctx, actor, code, from_on=_day(page, "from_on"), to_on=_day(page, "to_on")
        )
    except DomainError as error:
        if error.status == 404:
            raise
        return render_form(page, "staff/reports.html", error, **shown)
    return render(page, "staff/reports.html", **{**shown, "report": report})
