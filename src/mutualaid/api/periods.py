"""Periods: close, the public notice, collection files, payouts, statements, proofs, prepaid."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from mutualaid.adapters import Int64
from mutualaid.api.dependencies import Context, CurrentActor, IdempotencyKey
from mutualaid.api.openapi import (
    PUBLIC_READ,
    READ,
    SAFE_TO_RETRY,
    WRITE,
    errors,
    json_document,
    ok,
    raw,
)
from mutualaid.api.schemas import LedgerBalances
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.apportionment import CapExcess
from mutualaid.services.collections.debits import CollectionRun
from mutualaid.services.collections.files import export_collection_file, import_collection_results
from mutualaid.services.collections.payouts import PayoutRun, pay_approved_claims
from mutualaid.services.collections.prepaid import PrepaidView, prepaid_balance, top_up
from mutualaid.services.ledger.ledger import account_balances
from mutualaid.services.periods.close import close_period
from mutualaid.services.periods.notice import PeriodNotice, period_notice
from mutualaid.services.periods.proofs import charge_proof, charge_proof_file_name
from mutualaid.services.periods.statements import (
    MemberStatement,
    account_statements,
    member_statement,
)
from mutualaid.services.periods.views import PeriodView, list_periods

router = APIRouter(prefix="/api/v1", tags=["periods"])


class CloseRequest(BaseModel):
    on: date | None = Field(default=None, description="The publicity day (default: the latest)")
    cap_excess: CapExcess = Field(
        default=CapExcess.SPONSOR,
        description="Who bears what the caps remove: the sponsor, or the payouts (prorated)",
    )


class TopUp(BaseModel):
    amount_fen: Int64 = Field(gt=0, le=10_000_000)


@router.get(
    "/plans/{plan_code}/periods",
    operation_id="periods-list",
    response_model=None,
    responses=ok(list[PeriodView]) | PUBLIC_READ,
)
def periods(
    plan_code: str, ctx: Context, limit: Annotated[Int64, Query(ge=1, le=500)] = 100
) -> list[PeriodView]:
    """The plan's periods, newest first, with their figures (public)."""
    return list_periods(ctx, plan_code, limit=limit)


@router.post(
    "/plans/{plan_code}/periods",
    operation_id="periods-close",
    response_model=None,
    responses=ok(PeriodView) | WRITE,
    dependencies=[SAFE_TO_RETRY],
)
def close(plan_code: str, body: CloseRequest, ctx: Context, actor: CurrentActor) -> PeriodView:
    """Operators: close a period (lock, figures, commitment). Idempotent: closing it again
    returns the same period and charges nobody twice."""
    return close_period(ctx, actor, plan_code, body.on, cap_excess=body.cap_excess)


@router.get(
    "/plans/{plan_code}/periods/{publicity_on}",
    operation_id="periods-notice",
    response_model=None,
    responses=ok(PeriodNotice) | PUBLIC_READ,
)
def notice(plan_code: str, publicity_on: date, ctx: Context) -> PeriodNotice:
    """The public period notice: every case (anonymised), aid, fee, surplus, sponsor amount,
    member count, share per member, and the arithmetic that proves the numbers add up."""
    return period_notice(ctx, plan_code, publicity_on)


@router.get(
    "/plans/{plan_code}/periods/{publicity_on}/collection-file",
    operation_id="periods-collection-file",
    response_class=Response,
    responses=raw(("text/csv",), "The debit instructions, CSV") | READ,
)
def collection_file(
    plan_code: str, publicity_on: date, ctx: Context, actor: CurrentActor
) -> StreamingResponse:
    """Operators: the CSV of debit instructions for a payment provider, one line per charged
    membership (membership_id, payer_account_id, amount_fen, reference)."""
    require_role(actor.role, Role.OPERATOR)
    spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 - closed by the stream
    export_collection_file(ctx, plan_code, publicity_on, spool)
    spool.seek(0)

    def stream() -> Iterator[bytes]:
        with spool:
            while block := spool.read(1 << 20):
                yield block

    name = f"{plan_code}-{publicity_on.isoformat()}-collection.csv"
    return StreamingResponse(
        stream(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post(
    "/plans/{plan_code}/periods/{publicity_on}/collection-results",
    operation_id="periods-import-collection-results",
    response_model=None,
    responses=ok(CollectionRun) | WRITE,
    dependencies=[SAFE_TO_RETRY],
)
async def collection_results(
    plan_code: str, publicity_on: date, request: Request, ctx: Context, actor: CurrentActor
) -> CollectionRun:
    """Operators: the provider's results file (CSV body: membership_id,status; status paid or
    failed). Memberships not listed were paid; a payer's own share is taken first. Safe to
    retry: importing the same file again changes nothing."""
    require_role(actor.role, Role.OPERATOR)
    spool = tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+b")  # noqa: SIM115
    with spool:
        async for block in request.stream():
            spool.write(block)
        spool.seek(0)
        lines = (line.decode("utf-8-sig") for line in spool)
        return await run_in_threadpool(
            import_collection_results, ctx, actor, plan_code, publicity_on, lines
        )


@router.post(
    "/plans/{plan_code}/periods/{publicity_on}/payouts",
    operation_id="periods-pay-out",
    response_model=None,
    responses=ok(PayoutRun) | WRITE,
    dependencies=[SAFE_TO_RETRY],
)
def payouts(plan_code: str, publicity_on: date, ctx: Context, actor: CurrentActor) -> PayoutRun:
    """Operators: pay every case of a collected period, once each (safe to retry: a paid case
    is not paid again)."""
    return pay_approved_claims(ctx, actor, plan_code, publicity_on)


@router.get(
    "/plans/{plan_code}/periods/{publicity_on}/charge-proof",
    operation_id="periods-charge-proof",
    response_class=Response,
    responses=json_document("The charge proof file (`mutualaid-charge-proof/v1`)")
    | READ
    | errors(409),
)
def proof(
    plan_code: str, publicity_on: date, membership_id: Int64, ctx: Context, actor: CurrentActor
) -> Response:
    """A member's charge proof file (`mutualaid-charge-proof/v1`, checked offline by
    `mutualaid verify charge`): their charge, its block in the period's charges tree, the
    period's commitment leaf, its inclusion in the log and the cosigned checkpoint. 409
    `commitment_not_yet_checkpointed` until a published checkpoint covers the commitment."""
    found = charge_proof(ctx, actor, membership_id, plan_code, publicity_on)
    return Response(
        found.to_json(),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{charge_proof_file_name(found)}"'},
    )


@router.get(
    "/memberships/{membership_id}/statement",
    operation_id="periods-statement",
    response_model=None,
    responses=ok(MemberStatement) | READ,
)
def statement(membership_id: Int64, ctx: Context, actor: CurrentActor) -> MemberStatement:
    """Every period a membership shared in: the share, its charge, what was paid, what for."""
    return member_statement(ctx, actor, membership_id)


@router.get(
    "/statements",
    operation_id="periods-my-statements",
    response_model=None,
    responses=ok(list[MemberStatement]) | READ,
)
def my_statements(ctx: Context, actor: CurrentActor) -> list[MemberStatement]:
    """The statements of every membership the caller pays for."""
    return account_statements(ctx, actor)


@router.get(
    "/plans/{plan_code}/prepaid",
    operation_id="periods-prepaid-balance",
    response_model=None,
    responses=ok(PrepaidView) | READ,
)
def balance(plan_code: str, ctx: Context, actor: CurrentActor) -> PrepaidView:
    return prepaid_balance(ctx, actor, plan_code)


@router.post(
    "/plans/{plan_code}/prepaid/top-ups",
    operation_id="periods-top-up",
    status_code=status.HTTP_201_CREATED,
    response_model=None,
    responses=ok(PrepaidView, 201, "Added") | WRITE,
)
def add_funds(
    plan_code: str, body: TopUp, ctx: Context, actor: CurrentActor, key: IdempotencyKey = None
) -> PrepaidView:
    """Prepaid plans: add to the caller's balance (shares are deducted from it)."""
    return top_up(ctx, actor, plan_code, body.amount_fen, idempotency_key=key)


@router.get(
    "/ledger/balances",
    operation_id="periods-ledger-balances",
    response_model=LedgerBalances,
    responses=READ,
)
def ledger(ctx: Context, actor: CurrentActor, prefix: str = "") -> dict[str, object]:
    """Operators and auditors: every ledger account's balance (integer fen)."""
    balances = account_balances(ctx, actor, prefix)
    # Over all accounts the total is 0: every transaction's legs sum to zero.
    return {"balances": balances, "total_fen": sum(balances.values())}
