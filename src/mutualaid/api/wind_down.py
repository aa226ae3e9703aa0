"""Sponsored schemes, sponsored periods and the end of a plan; members' records and the migration
export. (Closing a plan needs the log's signing key: it is a server command, `mutualaid
wind-down close`.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from fastapi import APIRouter, status
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from mutualaid.api.dependencies import Context, CurrentActor, IdempotencyKey
from mutualaid.api.openapi import PUBLIC_READ, READ, SAFE_TO_RETRY, WRITE, ok, raw
from mutualaid.api.schemas import MemberRecord
from mutualaid.services.plans.schemes import (
    SchemeView,
    SponsorshipView,
    attach_scheme,
    list_schemes,
    sponsor_periods,
)
from mutualaid.services.wind_down.exports import member_record, member_record_csv, migration_export
from mutualaid.services.wind_down.wind_down import (
    MinimumCheck,
    WindDownView,
    announce_end,
    check_minimum_membership,
    end_cover,
    wind_down_status,
)

router = APIRouter(prefix="/api/v1", tags=["sponsored schemes and wind-down"])


class NewScheme(BaseModel):
    source_toml: str = Field(
        min_length=1,
        max_length=100_000,
        description="The scheme file (code, names, starts_on, payout_fen, …)",
    )


class NewSponsorship(BaseModel):
    kind: str = Field(default="period", description="period (every share) or cap_excess")
    from_on: date
    to_on: date
    memo: str = Field(default="", max_length=500)


class Announcement(BaseModel):
    end_on: date = Field(description="Cover ends at 00:00 on this day, in the plan's zone")
    reason: str = Field(min_length=1, max_length=2000)


@router.get(
    "/plans/{plan_code}/schemes",
    operation_id="schemes-list",
    response_model=None,
    responses=ok(list[SchemeView]) | PUBLIC_READ,
)
def schemes(plan_code: str, ctx: Context) -> list[SchemeView]:
    """The plan's sponsored schemes (public): what they cover and pay."""
    return list_schemes(ctx, plan_code)


@router.post(
    "/plans/{plan_code}/schemes",
    operation_id="schemes-attach",
    status_code=status.HTTP_201_CREATED,
    response_model=None,
    responses=ok(SchemeView, 201, "Attached (or already attached)") | WRITE,
    dependencies=[SAFE_TO_RETRY],
)
def attach(plan_code: str, body: NewScheme, ctx: Context, actor: CurrentActor) -> SchemeView:
    """Operators: attach a sponsored scheme; the same file again changes nothing (safe to
    retry)."""
    return attach_scheme(ctx, actor, plan_code, body.source_toml)


@router.post(
    "/plans/{plan_code}/sponsorships",
    operation_id="schemes-sponsor",
    status_code=status.HTTP_201_CREATED,
    response_model=None,
    responses=ok(SponsorshipView, 201, "Sponsored") | WRITE,
)
def sponsor(
    plan_code: str,
    body: NewSponsorship,
    ctx: Context,
    actor: CurrentActor,
    key: IdempotencyKey = None,
) -> SponsorshipView:
    """Operators: the sponsor pays the shares (or the cap excess) of periods in a range."""
    return sponsor_periods(
        ctx,
        actor,
        plan_code,
        body.kind,
        body.from_on,
        body.to_on,
        body.memo,
        idempotency_key=key,
    )


@router.get(
    "/plans/{plan_code}/wind-down",
    operation_id="wind-down-status",
    response_model=None,
    responses=ok(WindDownView) | PUBLIC_READ,
)
def wind_down(plan_code: str, ctx: Context) -> WindDownView:
    """Where the plan stands (public): open, winding down, run-off or closed, with the figures."""
    return wind_down_status(ctx, plan_code)


@router.post(
    "/plans/{plan_code}/wind-down",
    operation_id="wind-down-announce",
    response_model=None,
    responses=ok(WindDownView) | WRITE,
    dependencies=[SAFE_TO_RETRY],
)
def announce(plan_code: str, body: Announcement, ctx: Context, actor: CurrentActor) -> WindDownView:
    """Operators: announce the end of the plan (safe to retry: the same end date again changes
    nothing; another date is refused)."""
    return announce_end(ctx, actor, plan_code, body.end_on, body.reason)


@router.post(
    "/plans/{plan_code}/wind-down/end-cover",
    operation_id="wind-down-end-cover",
    response_model=None,
    responses=ok(WindDownView) | WRITE,
    dependencies=[SAFE_TO_RETRY],
)
def end(plan_code: str, ctx: Context, actor: CurrentActor) -> WindDownView:
    """Operators: on or after the end date, end cover and refund the prepaid balances (safe to
    retry: once the plan is in run-off, this answers its status and changes nothing)."""
    return end_cover(ctx, actor, plan_code)


@router.post(
    "/plans/{plan_code}/minimum-check",
    operation_id="wind-down-minimum-check",
    response_model=None,
    responses=ok(MinimumCheck) | WRITE,
    dependencies=[SAFE_TO_RETRY],
)
def minimum(plan_code: str, ctx: Context, actor: CurrentActor) -> MinimumCheck:
    """Operators: check the membership against the plan's minimum (alert, or wind down). Safe to
    retry: a check changes something only when the membership has changed."""
    return check_minimum_membership(ctx, actor, plan_code)


@router.get(
    "/me/record",
    operation_id="wind-down-my-record",
    response_model=None,
    responses=ok(MemberRecord) | READ,
)
def my_record(ctx: Context, actor: CurrentActor) -> dict[str, Any]:
    """The caller's complete record: memberships, statements, claims, refunds and proofs."""
    return member_record(ctx, actor)


@router.get(
    "/me/record.csv",
    operation_id="wind-down-my-record-csv",
    response_class=Response,
    responses=raw(("text/csv",), "The record, CSV") | READ,
)
def my_record_csv(ctx: Context, actor: CurrentActor) -> PlainTextResponse:
    """The same record as CSV."""
    return PlainTextResponse(
        member_record_csv(member_record(ctx, actor)),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="record.csv"'},
    )


@router.get(
    "/plans/{plan_code}/migration-export",
    operation_id="wind-down-migration-export",
    response_class=Response,
    responses=raw(("text/csv",), "Every member's cover dates, CSV") | READ,
)
def migration(
    plan_code: str, ctx: Context, actor: CurrentActor, with_identity: bool = False
) -> StreamingResponse:
    """Operators: every member's cover dates for a successor, as streamed CSV."""
    lines = migration_export(ctx, actor, plan_code, with_identity=with_identity)
    header = next(lines)  # checks the plan and writes the audit row before the response starts

    def stream() -> Iterator[bytes]:
        yield header.encode()
        for text in lines:
            yield text.encode()

    return StreamingResponse(
        stream(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{plan_code}-members.csv"'},
    )
