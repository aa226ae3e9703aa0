"""Refunds of the shares a membership paid (issue 19): an illness (not an accident) first
diagnosed in the waiting period ends the membership with no payout (claims/filing.py), which
requests a refund: a `pending` `membership_refunds` row, one per membership, ever.

`refunds_due` prices each pending refund from the member's statement (so a period computed before
the end and collected after it is refunded too) and posts ledger transaction ``refund:m-<id>``:
the sponsor funds it (the shares already went to other members' aid) into ``plan:P:refunds``;
then lists the refunds due for the provider or the collection file. `mark_refund_paid` records
the provider's payment back to the payer: ``refund-paid:m-<id>``, from ``plan:P:refunds`` to
``external:provider``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mutualaid.db.models import MembershipRefund, Plan
from mutualaid.db.queries.plans import plan_by_code
from mutualaid.domain.accounts import Role
from mutualaid.domain.errors import Conflict, Forbidden, NotFound
from mutualaid.domain.ledger import PROVIDER, SPONSOR, Leg, plan_account, transaction
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import Once, UnitOfWork
from mutualaid.services.ledger.ledger import post
from mutualaid.services.periods.statements import statement_of

#: pending: requested (the membership ended), not yet priced; due: priced and posted, to be paid
#: back; paid: paid back through the provider; none: the member had paid nothing.
PENDING, DUE, PAID, NONE = "pending", "due", "paid", "none"


@dataclass(frozen=True, slots=True)
class RefundView:
    id: int
    plan_code: str
    membership_id: int
    payer_account_id: int
    amount_fen: int
    reason: str
    status: str
    created_at: datetime
    paid_at: datetime | None


def _view(row: MembershipRefund, plan_code: str) -> RefundView:
    return RefundView(
        id=row.id,
        plan_code=plan_code,
        membership_id=row.membership_id,
        payer_account_id=row.payer_account_id,
        amount_fen=row.amount_fen,
        reason=row.reason,
        status=row.status,
        created_at=row.created_at,
        paid_at=row.paid_at,
    )


def _settle(session: Session, plan: Plan, row: MembershipRefund, now: datetime) -> None:
    """Price a pending refund from the member's statement (what they paid, every period that
    has been collected since they ended included) and post it: due, or none when nothing was
    paid. Once: the ledger key is unique."""
    amount = statement_of(session, row.membership_id).paid_fen
    row.amount_fen = amount
    if amount <= 0:
        row.status = NONE
        return
    row.status = DUE
    post(
        session,
        transaction(
            f"refund:m-{row.membership_id}",
            "membership_refund",
            [Leg(SPONSOR, -amount), Leg(plan_account(plan.code, "refunds"), amount)],
            memo=f"shares of membership {row.membership_id} refunded ({row.reason})",
        ),
        at=now,
        plan_id=plan.id,
    )
    audit.record(
        session,
        at=now,
        actor_account_id=None,
        action="membership_refund",
        subject_type="membership",
        subject_id=row.membership_id,
        amount_fen=amount,
        reason=row.reason,
    )


def _require_staff(actor: Actor, roles: tuple[Role, ...]) -> None:
    if actor.role not in roles:
        raise Forbidden(
            "forbidden", "only staff may see refunds", "role", details={"variant": "staff"}
        )


def refunds_due(
    ctx: ServiceContext, actor: Actor, plan_code: str, *, limit: int = 500
) -> list[RefundView]:
    """The plan's refunds still to be paid back, oldest first, for the provider or the file;
    refunds requested since the last call are priced and posted first."""
    _require_staff(actor, (Role.OPERATOR, Role.AUDITOR))
    uow: UnitOfWork[list[RefundView]] = ctx.unit_of_work()
    with uow:
        session = uow.session
        now = ctx.clock.now()
        plan = plan_by_code(session, plan_code)
        for row in session.scalars(
            select(MembershipRefund)
            .where(MembershipRefund.status == PENDING, MembershipRefund.plan_id == plan.id)
            .order_by(MembershipRefund.id)
            .with_for_update()
        ).all():
            _settle(session, plan, row, now)
        rows = session.scalars(
            select(MembershipRefund)
            .where(MembershipRefund.status == DUE, MembershipRefund.plan_id == plan.id)
            .order_by(MembershipRefund.id)
            .limit(max(1, min(limit, 5000)))
        ).all()
        uow.commit([_view(row, plan.code) for row in rows])
    return uow.result


def mark_refund_paid(
    ctx: ServiceContext, actor: Actor, refund_id: int, *, idempotency_key: str | None = None
) -> RefundView:
    """The provider paid the refund back to the payer: posted once, from plan:P:refunds."""
    _require_staff(actor, (Role.OPERATOR,))
    once = Once(actor.account_id, idempotency_key, f"refund_paid:{refund_id}", {}, RefundView)
    with ctx.unit_of_work(once) as uow:
        session = uow.session
        now = ctx.clock.now()
        row = session.get(MembershipRefund, refund_id, with_for_update=True)
        if row is None:
            raise NotFound("refund_not_found", f"there is no refund {refund_id}", "refund_id")
        plan = session.get_one(Plan, row.plan_id)
        if row.status != DUE:
            raise Conflict(
                "refund_already_paid", f"refund {refund_id} is already paid", "refund_id"
            )
        row.status, row.paid_at = PAID, now
        post(
            session,
            transaction(
                f"refund-paid:m-{row.membership_id}",
                "membership_refund_paid",
                [
                    Leg(plan_account(plan.code, "refunds"), -row.amount_fen),
                    Leg(PROVIDER, row.amount_fen),
                ],
                memo=f"refund {row.id} paid back through the provider",
            ),
            at=now,
            plan_id=plan.id,
            actor_id=actor.recorded_id,
        )
        audit.record(
            session,
            at=now,
            actor_account_id=actor.recorded_id,
            action="membership_refund_paid",
            subject_type="membership",
            subject_id=row.membership_id,
            amount_fen=row.amount_fen,
        )
        uow.commit(_view(row, plan.code))
    return uow.result
