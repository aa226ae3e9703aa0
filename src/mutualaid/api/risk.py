"""Risk controls: a claim's signals and links, reviewers' feedback, routing by score, the operator's
figures, the weight report, and proven fraud with its appeal. No endpoint rejects a claim."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from mutualaid.adapters import Int64
from mutualaid.api.dependencies import Context, CurrentActor, IdempotencyKey
from mutualaid.api.openapi import PUBLIC_READ, READ, SAFE_TO_RETRY, WRITE, ok
from mutualaid.api.schemas import SignalOut
from mutualaid.domain.risk import SIGNALS, WeightAdvice
from mutualaid.services.claims.routing import Routing, route_investigation
from mutualaid.services.risk.figures import RiskOperations, risk_operations, weight_report
from mutualaid.services.risk.fraud_records import (
    AppealView,
    FraudRecordView,
    appeal_fraud_record,
    decide_appeal,
    flag_fraud,
    my_fraud_records,
    pending_appeals,
)
from mutualaid.services.risk.reviews import (
    ClaimGraph,
    FeedbackView,
    RiskView,
    claim_graph,
    claim_risk,
    record_feedback,
)
from mutualaid.services.risk.risk import RescoreResult, rescore_plan

router = APIRouter(prefix="/api/v1", tags=["risk"])


class Feedback(BaseModel):
    signal: str = Field(min_length=1, max_length=40, examples=["shared_payee"])
    useful: bool
    note: str = Field(default="", max_length=2000)


class Reason(BaseModel):
    reason: str = Field(min_length=10, max_length=2000)


class AppealDecision(BaseModel):
    uphold: bool
    note: str = Field(min_length=1, max_length=2000)


@router.get(
    "/risk/signals",
    operation_id="risk-signals",
    response_model=list[SignalOut],
    responses=PUBLIC_READ,
)
def signals() -> list[dict[str, object]]:
    """Every signal with its weight and documented reason."""
    return [
        {
            "code": s.code,
            "weight": s.weight,
            "label_zh": s.label_zh,
            "label_en": s.label_en,
            "reason": s.reason,
        }
        for s in SIGNALS
    ]


@router.get(
    "/claims/{ref}/risk",
    operation_id="risk-claim",
    response_model=None,
    responses=ok(RiskView) | READ,
)
def risk(ref: str, ctx: Context, actor: CurrentActor) -> RiskView:
    """The claim's risk score and every signal that fired, explained (staff)."""
    return claim_risk(ctx, actor, ref)


@router.get(
    "/claims/{ref}/risk/graph",
    operation_id="risk-graph",
    response_model=None,
    responses=ok(ClaimGraph) | READ,
)
def graph(ref: str, ctx: Context, actor: CurrentActor) -> ClaimGraph:
    """The claims linked to this one and what links them (staff)."""
    return claim_graph(ctx, actor, ref)


@router.post(
    "/claims/{ref}/risk/feedback",
    operation_id="risk-feedback",
    response_model=None,
    responses=ok(FeedbackView) | WRITE,
)
def feedback(
    ref: str, body: Feedback, ctx: Context, actor: CurrentActor, key: IdempotencyKey = None
) -> FeedbackView:
    """Say whether a signal helped on this case; the weight report learns from it."""
    return record_feedback(
        ctx, actor, ref, body.signal, body.useful, body.note, idempotency_key=key
    )


@router.post(
    "/claims/{ref}/risk/route",
    operation_id="risk-route",
    response_model=None,
    responses=ok(Routing) | WRITE,
)
def route(ref: str, ctx: Context, actor: CurrentActor, key: IdempotencyKey = None) -> Routing:
    """Assign the investigation by score: field for high risk, desk review otherwise."""
    return route_investigation(ctx, actor, ref, idempotency_key=key)


@router.post(
    "/plans/{code}/risk/rescore",
    operation_id="risk-rescore",
    response_model=None,
    responses=ok(RescoreResult) | WRITE,
    dependencies=[SAFE_TO_RETRY],
)
def rescore(code: str, ctx: Context, actor: CurrentActor) -> RescoreResult:
    """Score every open claim again. Safe to retry: the same rules give the same scores."""
    return rescore_plan(ctx, actor, code)


@router.get(
    "/plans/{code}/risk/operations",
    operation_id="risk-operations",
    response_model=None,
    responses=ok(RiskOperations) | READ,
)
def operations(code: str, ctx: Context, actor: CurrentActor) -> RiskOperations:
    """Investigation cost per case (field, desk) and how flagged cases ended."""
    return risk_operations(ctx, actor, code)


@router.get(
    "/risk/weights",
    operation_id="risk-weights",
    response_model=None,
    responses=ok(list[WeightAdvice]) | READ,
)
def weights(ctx: Context, actor: CurrentActor, plan: str | None = None) -> list[WeightAdvice]:
    """Per signal: fired, reviewers' usefulness, rejections, and the suggested weight."""
    return weight_report(ctx, actor, plan)


@router.post(
    "/claims/{ref}/fraud-record",
    operation_id="risk-flag-fraud",
    status_code=status.HTTP_201_CREATED,
    response_model=None,
    responses=ok(FraudRecordView, 201, "Recorded") | WRITE,
)
def flag(
    ref: str, body: Reason, ctx: Context, actor: CurrentActor, key: IdempotencyKey = None
) -> FraudRecordView:
    """Record proven fraud for a claim rejected for fraud (operator); the member may appeal."""
    return flag_fraud(ctx, actor, ref, body.reason, idempotency_key=key)


@router.get(
    "/fraud-records/mine",
    operation_id="risk-my-fraud-records",
    response_model=None,
    responses=ok(list[FraudRecordView]) | READ,
)
def mine(ctx: Context, actor: CurrentActor) -> list[FraudRecordView]:
    return my_fraud_records(ctx, actor)


@router.post(
    "/fraud-records/{record_id}/appeal",
    operation_id="risk-appeal-fraud-record",
    status_code=status.HTTP_201_CREATED,
    response_model=None,
    responses=ok(AppealView, 201, "Appealed") | WRITE,
)
def appeal(
    record_id: Int64, body: Reason, ctx: Context, actor: CurrentActor, key: IdempotencyKey = None
) -> AppealView:
    """The member appeals once against a fraud record on their account."""
    return appeal_fraud_record(ctx, actor, record_id, body.reason, idempotency_key=key)


@router.get(
    "/fraud-appeals",
    operation_id="risk-pending-appeals",
    response_model=None,
    responses=ok(list[AppealView]) | READ,
)
def appeals(ctx: Context, actor: CurrentActor) -> list[AppealView]:
    return pending_appeals(ctx, actor)


@router.post(
    "/fraud-appeals/{appeal_id}/decision",
    operation_id="risk-decide-appeal",
    response_model=None,
    responses=ok(AppealView) | WRITE,
)
def decide(
    appeal_id: Int64,
    body: AppealDecision,
    ctx: Context,
    actor: CurrentActor,
    key: IdempotencyKey = None,
) -> AppealView:
    """Another operator than the one who recorded the fraud decides; upheld revokes the record."""
    return decide_appeal(
        ctx, actor, appeal_id, uphold=body.uphold, note=body.note, idempotency_key=key
    )
