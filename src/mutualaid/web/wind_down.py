"""The staff page of how each plan stands with its end: open, winding down, run-off or closed,
with the figures of the wind-down (members ended, refunds, write-offs, final checkpoint)."""

from __future__ import annotations

from fastapi.responses import HTMLResponse

from mutualaid.domain.accounts import Role
from mutualaid.services.plans.plans import list_plans
from mutualaid.services.plans.schemes import list_schemes, list_sponsorships
from mutualaid.services.wind_down.wind_down import wind_down_status
from mutualaid.web.pages import page_router, render
from mutualaid.web.sessions import Page

router = page_router()


@router.get("/staff/wind-down")
def wind_down(page: Page) -> HTMLResponse:
    page.need(Role.OPERATOR, Role.AUDITOR)
    plans = [
        (
            summary,
            wind_down_status(page.ctx, summary.plan.code),
            list_schemes(page.ctx, summary.plan.code),
            list_sponsorships(page.ctx, summary.plan.code),
        )
        for summary in list_plans(page.ctx)
    ]
    return render(page, "staff/wind_down.html", plans=plans)
