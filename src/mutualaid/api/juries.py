"""Juries: certification, disputes, referrals, case files, votes, results; notifications."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field

from mutualaid.adapters import Int64
from mutualaid.api.dependencies import BearerCaller, Context, CurrentActor, IdempotencyKey
from mutualaid.api.openapi import NO_CONTENT, PUBLIC_READ, READ, SAFE_TO_RETRY, WRITE, ok
from mutualaid.api.responses import json_answer
from mutualaid.api.schemas import NotificationsPage, QuizQuestion
from mutualaid.domain.claims import MAX_NOTE_CHARS
from mutualaid.services.juries.certification import (
    CertificationResult,
    certification_quiz,
    certify_juror,
)
from mutualaid.services.juries.closing import JuryCloseRun, close_due_juries
from mutualaid.services.juries.juries import JuryView, jury_rounds, open_votes_for
from mutualaid.services.juries.panels import dispute_rejection, refer_to_jury
from mutualaid.services.juries.votes import JurorCaseFile, VoteReceipt, cast_vote, juror_case_file
from mutualaid.services.notifications import list_notifications, mark_read, unread_count

router = APIRouter(prefix="/api/v1", tags=["juries"])


class Answers(BaseModel):
    answers: dict[str, str]


class Dispute(BaseModel):
    reason: str = Field(min_length=1, max_length=MAX_NOTE_CHARS)


class Vote(BaseModel):
    choice: str = Field(pattern="^(approve|reject|recuse)$")
    quiz_answers: dict[str, str] = Field(default_factory=dict)


@router.get(
    "/juror-certification",
    operation_id="juries-certification-quiz",
    response_model=list[QuizQuestion],
    responses=PUBLIC_READ,
)
def quiz() -> list[dict[str, Any]]:
    """The juror certification quiz (answer every question right to become a juror)."""
    return certification_quiz()


@router.post(
    "/juror-certification",
    operation_id="juries-certify",
    response_model=None,
    responses=ok(CertificationResult) | WRITE,
)
def certify(
    body: Answers, ctx: Context, actor: CurrentActor, key: IdempotencyKey = None
) -> CertificationResult:
    """Answer the quiz; every answer right makes the caller a juror."""
    return certify_juror(ctx, actor, body.answers, idempotency_key=key)


@router.post(
    "/claims/{ref}/dispute",
    operation_id="juries-dispute",
    status_code=status.HTTP_201_CREATED,
    response_model=None,
    responses=ok(JuryView, 201, "A jury round opened") | WRITE,
)
def dispute(
    ref: str, body: Dispute, ctx: Context, actor: CurrentActor, key: IdempotencyKey = None
) -> JuryView:
    """The applicant disputes a rejection; a member jury decides."""
    return dispute_rejection(ctx, actor, ref, body.reason, idempotency_key=key)


@router.post(
    "/claims/{ref}/jury-referral",
    operation_id="juries-refer",
    status_code=status.HTTP_201_CREATED,
    response_model=None,
    responses=ok(JuryView, 201, "A jury round opened") | WRITE,
)
def refer(
    ref: str, body: Dispute, ctx: Context, actor: CurrentActor, key: IdempotencyKey = None
) -> JuryView:
    """Operators refer a contested case to a jury."""
    return refer_to_jury(ctx, actor, ref, body.reason, idempotency_key=key)


@router.get(
    "/claims/{ref}/juries",
    operation_id="juries-rounds",
    response_model=None,
    responses=ok(list[JuryView]) | PUBLIC_READ,
)
def rounds(ref: str, ctx: Context) -> list[JuryView]:
    """Jury rounds of a case; counts appear only after a vote closes (public)."""
    return jury_rounds(ctx, ref)


@router.get(
    "/plans/{plan_code}/open-votes",
    operation_id="juries-open-votes",
    response_model=None,
    responses=ok(list[JuryView]) | READ,
)
def open_votes(plan_code: str, ctx: Context, actor: CurrentActor) -> list[JuryView]:
    return open_votes_for(ctx, actor, plan_code)


@router.get(
    "/juries/{jury_case_id}/case-file",
    operation_id="juries-case-file",
    response_model=None,
    responses=ok(JurorCaseFile) | READ,
)
def case_file(jury_case_id: Int64, ctx: Context, actor: CurrentActor) -> JurorCaseFile:
    return juror_case_file(ctx, actor, jury_case_id)


@router.post(
    "/juries/{jury_case_id}/votes",
    operation_id="juries-vote",
    status_code=status.HTTP_201_CREATED,
    response_model=VoteReceipt,
    responses=WRITE,
    dependencies=[SAFE_TO_RETRY],
)
def vote(jury_case_id: Int64, body: Vote, ctx: Context, caller: BearerCaller) -> Response:
    """One member, one vote (or recuse). Answer the case quiz first. Sending the same vote
    again returns the first receipt (safe to retry)."""
    # The token is checked in the vote's own first read (as a join's): one round trip fewer.
    return json_answer(
        cast_vote(ctx, caller, jury_case_id, body.choice, body.quiz_answers),
        status.HTTP_201_CREATED,
    )


#: The vote again, unlisted, for the app to route first (api/app.py): a request is matched against
#: the routers in order, and a vote would otherwise be tried against every route of the six
#: routers before this one (a seventh of the vote's CPU in a profile, benchmarks/bench_votes.py).
#: Same path, method, dependencies and endpoint: the same answers; the listed route above is the
#: one the OpenAPI document shows.
hot_router = APIRouter(prefix="/api/v1")
hot_router.add_api_route(
    "/juries/{jury_case_id}/votes",
    vote,
    methods=["POST"],
    status_code=status.HTTP_201_CREATED,
    response_model=VoteReceipt,
    responses=WRITE,
    dependencies=[SAFE_TO_RETRY],
    include_in_schema=False,
)


@router.post(
    "/juries/close-due",
    operation_id="juries-close-due",
    response_model=None,
    responses=ok(JuryCloseRun) | WRITE,
    dependencies=[SAFE_TO_RETRY],
)
def close_due(ctx: Context, actor: CurrentActor) -> JuryCloseRun:
    """Operators: close votes whose window has passed. Safe to retry: a vote closes once."""
    return close_due_juries(ctx, actor)


@router.get(
    "/notifications",
    operation_id="notifications-list",
    response_model=NotificationsPage,
    responses=READ,
)
def notifications(
    ctx: Context, actor: CurrentActor, after_id: Int64 = 0, limit: Int64 = 50
) -> dict[str, Any]:
    """The caller's notifications, newest first, with the unread count."""
    return {
        "unread": unread_count(ctx, actor.account_id),
        "items": list_notifications(ctx, actor.account_id, after_id=after_id, limit=limit),
    }


@router.post(
    "/notifications/read",
    operation_id="notifications-mark-read",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=NO_CONTENT | WRITE,
    dependencies=[SAFE_TO_RETRY],
)
def read(ctx: Context, actor: CurrentActor, up_to_id: Int64) -> None:
    """Mark every notification up to `up_to_id` read. Safe to retry: read stays read."""
    mark_read(ctx, actor.account_id, up_to_id)
