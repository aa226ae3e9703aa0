"""Reports for the operator's desk (operators and auditors): the same figures as `mutualaid report`."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from mutualaid.api.dependencies import Context, CurrentActor
from mutualaid.api.openapi import READ
from mutualaid.services.reports.reports import ALL_SECTIONS, PlanReport, Section, plan_report

router = APIRouter(prefix="/api/v1", tags=["reports"])


@router.get(
    "/plans/{plan_code}/reports",
    operation_id="reports-plan",
    response_model=PlanReport,
    responses=READ,
)
def report(
    plan_code: str,
    ctx: Context,
    actor: CurrentActor,
    from_on: Annotated[
        date | None,
        Query(
            alias="from",
            description="First day (the plan's time zone); default: the plan's first day",
        ),
    ] = None,
    to_on: Annotated[date | None, Query(alias="to", description="Last day; default: today")] = None,
    section: Annotated[
        list[Section] | None,
        Query(description="Only these sections (repeat the parameter); default: all"),
    ] = None,
) -> PlanReport:
    """Operators and auditors: membership flows per month, cases by illness, age band and province,
    share history per period, days from report to decision (median and 90th percentile), objection
    and upheld rates, jury referral and overturn rates, investigation cost per case, and per age
    band the expected contribution against the expected benefit under each sharing rule.

    Money is integer fen; rates and fairness ratios are fractions (1 is fair). Sections not asked
    for are `null`."""
    return plan_report(
        ctx, actor, plan_code, from_on=from_on, to_on=to_on, sections=section or ALL_SECTIONS
    )
