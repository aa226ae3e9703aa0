"""Posting to the double-entry ledger, reading balances, and correcting by reversal.

Posting happens inside the caller's transaction, once per key (UNIQUE ledger_transactions.key): a
re-run of a step that already posted finds its key and posts nothing. Rows are never updated (a
trigger refuses it); a mistake is corrected by `reverse_transaction`, a new transaction with every
leg negated and a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from mutualaid.db.models import LedgerAccount, LedgerEntry, LedgerTransaction
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.errors import Conflict, DomainError, NotFound
from mutualaid.domain.ledger import Leg, Transaction, balanced, reversal
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext

if TYPE_CHECKING:
    from mutualaid.services.idempotency import UnitOfWork


def _ensure_accounts(session: Session, codes: set[str], at: datetime) -> None:
    existing = set(session.scalars(select(LedgerAccount.code).where(LedgerAccount.code.in_(codes))))
    missing = sorted(codes - existing)
    if missing:
        session.execute(
            insert(LedgerAccount), [{"code": code, "created_at": at} for code in missing]
        )


def post(
    session: Session,
    tx: Transaction,
    *,
    at: datetime,
    plan_id: int | None = None,
    period_id: int | None = None,
    actor_id: int | None = None,
) -> int | None:
    """Post `tx` once: the new transaction's id, or None when its key was already posted."""
    if not balanced(tx.legs):
        raise DomainError(
            "unbalanced_transaction", f"the legs of {tx.key} do not sum to zero", "legs"
        )
    if session.scalar(select(LedgerTransaction.id).where(LedgerTransaction.key == tx.key)):
        return None
    reverses_id = None
    if tx.reverses_key is not None:
        reverses_id = session.scalar(
            select(LedgerTransaction.id).where(LedgerTransaction.key == tx.reverses_key)
        )
    _ensure_accounts(session, {leg.account for leg in tx.legs}, at)
    row = LedgerTransaction(
        key=tx.key,
        kind=tx.kind,
        plan_id=plan_id,
        period_id=period_id,
        memo=tx.memo,
        reverses_id=reverses_id,
        created_by=actor_id or None,
        created_at=at,
    )
    session.add(row)
    session.flush()
    session.execute(
        insert(LedgerEntry),
        [
            {"transaction_id": row.id, "account_code": leg.account, "amount_fen": leg.amount_fen}
            for leg in tx.legs
        ],
    )
    return row.id


def load_transaction(session: Session, key: str) -> Transaction:
    row = session.scalar(select(LedgerTransaction).where(LedgerTransaction.key == key))
    if row is None:
        raise NotFound("transaction_not_found", f"there is no ledger transaction {key!r}", "key")
    legs = session.execute(
        select(LedgerEntry.account_code, LedgerEntry.amount_fen)
        .where(LedgerEntry.transaction_id == row.id)
        .order_by(LedgerEntry.id)
    ).all()
    return Transaction(
        key=row.key, kind=row.kind, legs=tuple(Leg(a, n) for a, n in legs), memo=row.memo
    )


@dataclass(frozen=True, slots=True)
class PostedTransaction:
    key: str
    kind: str
    memo: str
    legs: list[tuple[str, int]]


def reverse_transaction(
    ctx: ServiceContext, actor: Actor, key: str, reason: str
) -> PostedTransaction:
    """Correct a posted transaction with a new, reversing one (the original stays as it was)."""
    require_role(actor.role, Role.OPERATOR)
    work: UnitOfWork[PostedTransaction] = ctx.unit_of_work()
    with work as uow:
        session = uow.session
        original = load_transaction(session, key)
        if original.kind == "reversal":
            raise Conflict("cannot_reverse_reversal", "post the original again instead", "key")
        correction = reversal(original, reason)
        row = session.scalar(select(LedgerTransaction).where(LedgerTransaction.key == key))
        assert row is not None
        now = ctx.clock.now()
        if (
            post(
                session,
                correction,
                at=now,
                plan_id=row.plan_id,
                period_id=row.period_id,
                actor_id=actor.recorded_id,
            )
            is None
        ):
            raise Conflict("already_reversed", f"{key} has already been reversed", "key")
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="ledger_reversal",
            subject_type="ledger_transaction",
            subject_id=row.id,
            key=key,
            reason=correction.memo,
        )
        uow.commit(
            PostedTransaction(
                correction.key,
                correction.kind,
                correction.memo,
                [(leg.account, leg.amount_fen) for leg in correction.legs],
            )
        )
    return uow.result


def balances(session: Session, prefix: str = "") -> dict[str, int]:
    """Each account's balance (the sum of its entries), for accounts whose code starts with `prefix`."""
    rows = session.execute(
        select(LedgerEntry.account_code, func.sum(LedgerEntry.amount_fen))
        .where(LedgerEntry.account_code.startswith(prefix, autoescape=True))
        .group_by(LedgerEntry.account_code)
        .order_by(LedgerEntry.account_code)
    ).all()
    return {code: int(total) for code, total in rows}


def unbalanced_transactions(session: Session) -> list[str]:
    """Keys of transactions whose entries do not sum to zero (always empty; auditors run it)."""
    sums = (
        select(LedgerEntry.transaction_id, func.sum(LedgerEntry.amount_fen).label("total"))
        .group_by(LedgerEntry.transaction_id)
        .subquery()
    )
    return list(
        session.scalars(
            select(LedgerTransaction.key)
            .join(sums, sums.c.transaction_id == LedgerTransaction.id)
            .where(sums.c.total != 0)
            .order_by(LedgerTransaction.id)
        )
    )


def account_balances(ctx: ServiceContext, actor: Actor, prefix: str = "") -> dict[str, int]:
    require_role(actor.role, Role.OPERATOR, Role.AUDITOR)
    with ctx.reading() as session:
        return balances(session, prefix)
