"""Refunds of the shares a membership paid (issue 19): an illness (not an accident) first
diagnosed in the waiting period ends the membership with no payout, and every share it paid is
refunded through the ledger.

A refund is one `membership_refunds` row (one per membership, ever) and one ledger transaction
``refund:m-<id>``: the sponsor funds it (the shares themselves already went to other members'
aid) into ``plan:P:refunds``; the payment provider pays it back to the payer, and
`mark_refund_paid` posts ``refund-paid:m-<id>`` from ``plan:P:refunds`` to ``external:provider``.
Staff list the refunds still due (`refunds_due`) for the provider or the collection file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mutualaid.db.models import Membership, MembershipRefund, Plan
from mutualaid.db.queries.plans import plan_by_code
from mutualaid.domain.accounts import Role
from mutualaid.domain.errors import Conflict, Forbidden, NotFound
from mutualaid.domain.ledger import PROVIDER, SPONSOR, Leg, plan_account, transaction
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import UnitOfWork
from mutualaid.services.ledger.ledger import post
from mutualaid.services.periods.statements import statement_of

DUE, PAID = "due", "paid"


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


def refund_shares(
    session: Session,
    plan: Plan,
    membership: Membership,
    reason: str,
    now: datetime,
    actor: Actor,
) -> int:
    """Refund every share `membership` paid, in the caller's transaction: the amount (0: nothing
    was paid, no row). Once per membership."""
    # What the member's statement says they paid (flushed first: it reads the ended membership).
    session.flush()
    amount = statement_of(session, membership.id).paid_fen
    if amount <= 0:
        return 0
    row = MembershipRefund(
        plan_id=plan.id,
        membership_id=membership.id,
        payer_account_id=membership.payer_account_id,
        amount_fen=amount,
        reason=reason,
        status=DUE,
        created_at=now,
    )
    session.add(row)
    session.flush()
    post(
        session,
        transaction(
            f"refund:m-{membership.id}",
            "membership_refund",
            [Leg(SPONSOR, -amount), Leg(plan_account(plan.code, "refunds"), amount)],
            memo=f"shares of membership {membership.id} refunded ({reason})",
        ),
        at=now,
        plan_id=plan.id,
        actor_id=actor.recorded_id,
    )
    audit.record(
        session,
        at=now,
        actor_account_id=actor.recorded_id,
        action="membership_refund",
        subject_type="membership",
        subject_id=membership.id,
        amount_fen=amount,
        reason=reason,
    )
    return amount


def _require_staff(actor: Actor, roles: tuple[Role, ...]) -> None:
    if actor.role not in roles:
        raise Forbidden(
            "forbidden", "only staff may see refunds", "role", details={"variant": "staff"}
        )


def refunds_due(
    ctx: ServiceContext, actor: Actor, plan_code: str, *, limit: int = 500
) -> list[RefundView]:
    """The plan's refunds still to be paid back, oldest first (for the provider or the file)."""
    _require_staff(actor, (Role.OPERATOR, Role.AUDITOR))
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        rows = session.scalars(
            select(MembershipRefund)
            .where(MembershipRefund.status == DUE, MembershipRefund.plan_id == plan.id)
            .order_by(MembershipRefund.id)
            .limit(max(1, min(limit, 5000)))
        ).all()
        return [_view(row, plan.code) for row in rows]


def mark_refund_paid(ctx: ServiceContext, actor: Actor, refund_id: int) -> RefundView:
    """The provider paid the refund back to the payer: posted once, from plan:P:refunds."""
    _require_staff(actor, (Role.OPERATOR,))
    uow: UnitOfWork[RefundView] = ctx.unit_of_work()
    with uow:
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
