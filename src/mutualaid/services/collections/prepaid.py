"""Prepaid balances: a payer's top-ups, what a collection takes from them, and the balance."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    PrepaidBalance,
)
from mutualaid.db.queries.plans import current_rules, plan_by_code
from mutualaid.domain.apportionment import (
    Due,
    take_in_order,
)
from mutualaid.domain.errors import DomainError
from mutualaid.domain.ledger import PROVIDER, Leg, plan_account, transaction
from mutualaid.domain.plans import FundingModel
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.collections.dues import Owed, payer_dues
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import Once
from mutualaid.services.ledger.ledger import post
from mutualaid.services.periods.sharing import ChargeRule


def balances_in_range(
    session: Session, plan_id: int, after: int, bound: int | None
) -> dict[int, int]:
    where = [PrepaidBalance.plan_id == plan_id, PrepaidBalance.payer_account_id > after]
    if bound is not None:
        where.append(PrepaidBalance.payer_account_id <= bound)
    return {
        payer: balance
        for payer, balance in session.execute(
            select(PrepaidBalance.payer_account_id, PrepaidBalance.balance_fen).where(*where)
        )
    }


def deduct(
    session: Session,
    rule: ChargeRule,
    plan_id: int,
    item: Owed,
    balances: dict[int, int],
    now: datetime,
) -> tuple[int, list[Due]]:
    payer = item.payer_account_id
    balance = balances.get(payer, 0)
    unpaid: list[Due] = []
    if balance >= item.amount_fen:
        paid = item.amount_fen
    else:
        taken, unpaid = take_in_order(balance, payer_dues(session, rule, payer))
        paid = sum(d.charge_fen for d in taken)
    if paid:
        balances[payer] = balance - paid
        row = session.get_one(PrepaidBalance, (plan_id, payer))
        row.balance_fen -= paid
        row.updated_at = now
    return paid, unpaid


# --- prepaid balances -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrepaidView:
    plan_code: str
    balance_fen: int


def top_up(
    ctx: ServiceContext,
    actor: Actor,
    plan_code: str,
    amount_fen: int,
    *,
    idempotency_key: str | None = None,
) -> PrepaidView:
    """A payer adds money to their prepaid balance in a plan (the provider has taken it)."""
    if amount_fen <= 0 or amount_fen > 10_000_000:
        raise DomainError(
            "invalid_amount",
            "a top-up is 0.01 to 100,000 yuan",
            "amount_fen",
            details={"variant": "top_up"},
        )

    with ctx.unit_of_work(
        Once(
            actor.account_id,
            idempotency_key,
            f"top_up:{plan_code}",
            {"amount_fen": amount_fen},
            PrepaidView,
        )
    ) as uow:
        session = uow.session
        now = ctx.clock.now()
        plan = plan_by_code(session, plan_code)
        if current_rules(session, plan).funding_model is not FundingModel.PREPAID:
            raise DomainError(
                "not_prepaid", "this plan collects shares after the fact, no top-up", "plan_code"
            )
        if plan.status in ("run_off", "closed"):  # issue 8: balances were refunded at the end
            raise DomainError(
                "plan_ended", "this plan has ended: nothing more can be paid in", "plan_code"
            )
        balance = session.get(PrepaidBalance, (plan.id, actor.account_id), with_for_update=True)
        if balance is None:
            balance = PrepaidBalance(
                plan_id=plan.id, payer_account_id=actor.account_id, balance_fen=0, updated_at=now
            )
            session.add(balance)
        key = f"top_up:{plan.code}:{actor.account_id}:{idempotency_key or secrets.token_hex(12)}"
        post(
            session,
            transaction(
                key,
                "top_up",
                [Leg(PROVIDER, -amount_fen), Leg(plan_account(plan.code, "prepaid"), amount_fen)],
                memo=f"top-up by payer {actor.account_id}",
            ),
            at=now,
            plan_id=plan.id,
            actor_id=actor.recorded_id,
        )
        balance.balance_fen += amount_fen
        balance.updated_at = now
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="prepaid_top_up",
            subject_type="plan",
            subject_id=plan.id,
            amount_fen=amount_fen,
        )
        uow.commit(PrepaidView(plan.code, balance.balance_fen))
    return uow.result


def prepaid_balance(ctx: ServiceContext, actor: Actor, plan_code: str) -> PrepaidView:
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        balance = session.get(PrepaidBalance, (plan.id, actor.account_id))
        return PrepaidView(plan.code, balance.balance_fen if balance else 0)
