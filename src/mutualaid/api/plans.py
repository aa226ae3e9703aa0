"""Plans: read the rules, publish a new version (operators), page through members (staff)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, status
from fastapi.responses import PlainTextResponse, Response

from mutualaid.adapters import Int64
from mutualaid.api.dependencies import Context, CurrentActor
from mutualaid.api.openapi import PUBLIC_READ, READ, SAFE_TO_RETRY, WRITE, ok, raw
from mutualaid.api.schemas import PlanDetail
from mutualaid.domain.memberships import MembershipState
from mutualaid.services.enrollment.memberships import MemberPage, list_plan_members
from mutualaid.services.plans.plans import (
    PlanSummary,
    PublishedPlan,
    list_plans,
    plan_rules,
    plan_source,
    publish_plan,
)

router = APIRouter(prefix="/api/v1/plans", tags=["plans"])


@router.get(
    "",
    operation_id="plans-list",
    response_model=None,
    responses=ok(list[PlanSummary]) | PUBLIC_READ,
)
def plans(ctx: Context) -> list[PlanSummary]:
    """Every plan with its current rule version and active member count (public)."""
    return list_plans(ctx)


@router.get(
    "/{plan_code}",
    operation_id="plans-get",
    response_model=None,
    responses=ok(PlanDetail) | PUBLIC_READ,
)
def plan(plan_code: str, ctx: Context) -> dict[str, Any]:
    """A plan's current rules, as structured data (public)."""
    view, rules = plan_rules(ctx, plan_code)
    return {"plan": view, "rules": rules.to_json()}


@router.get(
    "/{plan_code}/source",
    operation_id="plans-source",
    response_class=Response,
    responses=raw(("text/plain",), "The plan file") | PUBLIC_READ,
)
def source(plan_code: str, ctx: Context, version: Int64 | None = None) -> PlainTextResponse:
    """The plan file (TOML) of the current or a given version (public)."""
    return PlainTextResponse(plan_source(ctx, plan_code, version))


@router.post(
    "",
    operation_id="plans-publish",
    status_code=status.HTTP_201_CREATED,
    response_model=None,
    responses=ok(PublishedPlan, 201, "Published (or unchanged)") | WRITE,
    dependencies=[SAFE_TO_RETRY],
)
def publish(
    ctx: Context,
    actor: CurrentActor,
    source_toml: Annotated[str, Body(media_type="application/toml", description="The plan file")],
) -> PublishedPlan:
    """Publish a plan file as a new version (operators). Malformed files are refused per key.

    Safe to retry: the same rules again create no new version (`created_version` false)."""
    return publish_plan(ctx, actor, source_toml)


@router.get(
    "/{plan_code}/members",
    operation_id="plans-members",
    response_model=None,
    responses=ok(MemberPage) | READ,
)
def members(
    plan_code: str,
    ctx: Context,
    actor: CurrentActor,
    after_id: Annotated[
        Int64, Query(ge=0, description="Keyset cursor: next_after_id of the last page")
    ] = 0,
    limit: Annotated[Int64, Query(ge=1, le=500)] = 50,
    state: MembershipState | None = None,
) -> MemberPage:
    """Members of a plan, masked, 50 a page (staff)."""
    return list_plan_members(ctx, actor, plan_code, after_id=after_id, limit=limit, state=state)
