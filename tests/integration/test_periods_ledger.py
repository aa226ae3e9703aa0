"""The ledger on the database: posted once per key, never updated, corrected by reversal, and (on
PostgreSQL) refused at commit when a transaction's entries do not sum to zero."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import DatabaseError
from tests.factories import account
from tests.refusals import refused

from mutualaid.db.models import LedgerAccount, LedgerEntry, LedgerTransaction
from mutualaid.domain.accounts import Role
from mutualaid.domain.errors import Conflict, DomainError
from mutualaid.domain.ledger import SPONSOR, Leg, transaction
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.context import ServiceContext
from mutualaid.services.ledger.ledger import (
    balances,
    post,
    reverse_transaction,
    unbalanced_transactions,
)

TX = transaction("test:1", "test", [Leg("plan:p:aid_pool", 500), Leg(SPONSOR, -500)], memo="m")


def test_a_key_is_posted_once(ctx: ServiceContext) -> None:
    with ctx.sessions.begin() as session:
        assert post(session, TX, at=ctx.clock.now()) is not None
        assert post(session, TX, at=ctx.clock.now()) is None
    with ctx.reading() as session:
        assert balances(session) == {"operator:sponsor": -500, "plan:p:aid_pool": 500}


def test_an_unbalanced_transaction_is_never_posted(ctx: ServiceContext) -> None:
    bad = TX.__class__(key="bad", kind="test", legs=(Leg("a", 1), Leg("b", -2)))
    with ctx.sessions.begin() as session, pytest.raises(DomainError):
        post(session, bad, at=ctx.clock.now())


def test_ledger_rows_cannot_be_updated(ctx: ServiceContext) -> None:
    with ctx.sessions.begin() as session:
        post(session, TX, at=ctx.clock.now())
    for statement in (
        update(LedgerEntry).values(amount_fen=1),
        update(LedgerTransaction).values(memo="changed"),
    ):
        with pytest.raises(DatabaseError, match="immutable"), ctx.sessions.begin() as session:
            session.execute(statement)


def test_the_database_refuses_entries_that_do_not_balance(ctx: ServiceContext) -> None:
    if ctx.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no deferred constraint triggers; the service check guards it")
    with pytest.raises(DatabaseError, match="does not balance"), ctx.sessions.begin() as session:
        session.add(LedgerAccount(code="x", created_at=ctx.clock.now()))
        row = LedgerTransaction(key="raw", kind="test", memo="", created_at=ctx.clock.now())
        session.add(row)
        session.flush()
        session.execute(
            insert(LedgerEntry).values(transaction_id=row.id, account_code="x", amount_fen=7)
        )
    with ctx.reading() as session:
        assert session.scalar(select(LedgerTransaction.id)) is None


def test_a_correction_is_a_reversing_transaction_with_a_reason(ctx: ServiceContext) -> None:
    with ctx.sessions.begin() as session:
        post(session, TX, at=ctx.clock.now())
    with refused("forbidden"):
        reverse_transaction(ctx, account(ctx, Role.REVIEWER), "test:1", "wrong amount")
    correction = reverse_transaction(ctx, SYSTEM_ACTOR, "test:1", "entered for the wrong plan")
    assert correction.legs == [("plan:p:aid_pool", -500), (SPONSOR, 500)]
    with refused("already_reversed", Conflict):
        reverse_transaction(ctx, SYSTEM_ACTOR, "test:1", "again")
    with ctx.reading() as session:
        assert set(balances(session).values()) == {0}
        assert unbalanced_transactions(session) == []
        original, reversal_ = session.scalars(
            select(LedgerTransaction).order_by(LedgerTransaction.id)
        )
        assert (
            reversal_.reverses_id == original.id and reversal_.memo == "entered for the wrong plan"
        )
        assert session.execute(text("SELECT count(*) FROM ledger_entries")).scalar_one() == 4
