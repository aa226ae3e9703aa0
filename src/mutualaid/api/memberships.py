"""Joining a plan, seeing one's family's memberships, leaving."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response, status
from pydantic import BaseModel, Field

from mutualaid.adapters import Int64
from mutualaid.api.dependencies import BearerCaller, Context, CurrentActor, IdempotencyKey
from mutualaid.api.openapi import READ, SAFE_TO_RETRY, WRITE, ok
from mutualaid.api.responses import json_answer
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.identities import MAX_NAME_LENGTH
from mutualaid.domain.memberships import MembershipEvent, Relation
from mutualaid.services.enrollment.age_out_moves import (
    AgeOutMoveView,
    age_out_move,
    set_age_out_move,
)
from mutualaid.services.enrollment.joins import EnrollmentRequest, enroll_member
from mutualaid.services.enrollment.memberships import (
    AdvanceResult,
    MembershipView,
    advance_memberships,
    change_membership,
    get_membership,
    list_family_memberships,
)

router = APIRouter(prefix="/api/v1", tags=["memberships"])


class Enrollment(BaseModel):
    full_name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, examples=["张三华"])
    id_number: str = Field(min_length=1, max_length=30, examples=["110101199003070019"])
    relation: Relation = Relation.SELF
    health_answers: dict[str, bool] = Field(
        default_factory=dict, description="question code -> answer; every question must be answered"
    )
    rules_sha256: str | None = Field(
        default=None,
        max_length=64,
        description="the sha256 of the plan rules the member read and agreed to (the plan's "
        "`rules_sha256`); without it 400 `consent_required`, another 409 `rules_changed`",
    )


class Reason(BaseModel):
    reason: str | None = Field(default=None, max_length=500)


@router.post(
    "/plans/{plan_code}/memberships",
    operation_id="memberships-join",
    status_code=status.HTTP_201_CREATED,
    response_model=MembershipView,
    responses=WRITE,
)
def join(
    plan_code: str,
    body: Enrollment,
    ctx: Context,
    caller: BearerCaller,
    key: IdempotencyKey = None,
) -> Response:
    """Enroll yourself or a family member (you pay their shares). Send an Idempotency-Key."""
    request = EnrollmentRequest(
        full_name=body.full_name,
        id_number=body.id_number,
        relation=body.relation,
        health_answers=body.health_answers,
        rules_sha256=body.rules_sha256,
    )
    return json_answer(
        enroll_member(ctx, caller, plan_code, request, idempotency_key=key), status.HTTP_201_CREATED
    )


@router.get(
    "/memberships",
    operation_id="memberships-list",
    response_model=None,
    responses=ok(list[MembershipView]) | READ,
)
def my_memberships(ctx: Context, actor: CurrentActor) -> list[MembershipView]:
    """Your family's memberships in every plan."""
    return list_family_memberships(ctx, actor)


@router.get(
    "/memberships/{membership_id}",
    operation_id="memberships-get",
    response_model=None,
    responses=ok(MembershipView) | READ,
)
def membership(membership_id: Int64, ctx: Context, actor: CurrentActor) -> MembershipView:
    return get_membership(ctx, actor, membership_id)


@router.post(
    "/memberships/{membership_id}/leave",
    operation_id="memberships-leave",
    response_model=None,
    responses=ok(MembershipView) | WRITE,
)
def leave(
    membership_id: Int64,
    ctx: Context,
    actor: CurrentActor,
    key: IdempotencyKey = None,
    body: Annotated[Reason | None, Body()] = None,
) -> MembershipView:
    """Leave a plan. Rejoining later starts a new waiting period."""
    return change_membership(
        ctx,
        actor,
        membership_id,
        MembershipEvent.LEAVE,
        reason=body.reason if body else None,
        idempotency_key=key,
    )


class AgeOutMoveChoice(BaseModel):
    opted_in: bool = Field(description="true: move into the plan named when ageing out")


@router.get(
    "/memberships/{membership_id}/age-out-move",
    operation_id="memberships-age-out-move-get",
    response_model=None,
    responses=ok(AgeOutMoveView) | READ,
)
def get_age_out_move(membership_id: Int64, ctx: Context, actor: CurrentActor) -> AgeOutMoveView:
    """Whether this membership moves into another plan (Xiang Hu Bao: the elderly cancer plan)
    when it ages out, and from when the member may choose it. Refused with `no_age_out_move`
    when the plan has no such move."""
    return age_out_move(ctx, actor, membership_id)


@router.put(
    "/memberships/{membership_id}/age-out-move",
    operation_id="memberships-age-out-move-set",
    response_model=None,
    responses=ok(AgeOutMoveView) | WRITE,
)
def put_age_out_move(
    membership_id: Int64,
    body: AgeOutMoveChoice,
    ctx: Context,
    actor: CurrentActor,
    key: IdempotencyKey = None,
) -> AgeOutMoveView:
    """Opt in to (or out of) the automatic move when ageing out. Refused with
    `move_opt_in_too_early` before the plan's opt-in age, `membership_not_active` once the
    membership has ended or moved, `no_age_out_move` when the plan has no move."""
    return set_age_out_move(ctx, actor, membership_id, body.opted_in, idempotency_key=key)


@router.post(
    "/memberships/{membership_id}/events/{event}",
    operation_id="memberships-apply-event",
    response_model=None,
    responses=ok(MembershipView) | WRITE,
)
def apply_event(
    membership_id: Int64,
    event: MembershipEvent,
    ctx: Context,
    actor: CurrentActor,
    key: IdempotencyKey = None,
    body: Annotated[Reason | None, Body()] = None,
) -> MembershipView:
    """Operators: suspend, reinstate or remove a membership."""
    return change_membership(
        ctx, actor, membership_id, event, reason=body.reason if body else None, idempotency_key=key
    )


@router.post(
    "/plans/{plan_code}/advance",
    operation_id="memberships-advance",
    response_model=None,
    responses=ok(AdvanceResult) | WRITE,
    dependencies=[SAFE_TO_RETRY],
)
def advance(plan_code: str, ctx: Context, actor: CurrentActor) -> AdvanceResult:
    """Operators: run the daily job (waiting periods over, ageing out) now. Safe to retry: a
    second run finds nothing more to change."""
    require_role(actor.role, Role.OPERATOR)
    return advance_memberships(ctx, plan_code)
