"""Collections and the double-entry ledger: failures, prepaid balances, accounts, entries."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from mutualaid.db.models.base import Base, Id, UtcDateTime


class CollectionFailure(Base):
    """A membership whose share was not collected at the first attempt: retried daily until
    `retry_until_on`, then its membership is removed and the share written off to the sponsor."""

    __tablename__ = "collection_failures"
    __table_args__ = (
        UniqueConstraint("period_id", "membership_id"),
        Index("ix_collection_failures_membership", "membership_id"),
        Index("ix_collection_failures_status", "status", "retry_until_on"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id", ondelete="CASCADE"))
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"))
    payer_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    #: retrying, paid_late, written_off
    status: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer)
    retry_until_on: Mapped[date] = mapped_column(Date)
    first_failed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    suspended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class PrepaidBalance(Base):
    """A payer's prepaid balance in a plan (the per-payer detail of ledger account plan:P:prepaid)."""

    __tablename__ = "prepaid_balances"

    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), primary_key=True)
    payer_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    balance_fen: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"

    code: Mapped[str] = mapped_column(String(80), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class LedgerTransaction(Base):
    """Immutable: never updated; corrected by a reversing transaction (`reverses_id`, memo)."""

    __tablename__ = "ledger_transactions"
    __table_args__ = (Index("ix_ledger_transactions_period", "period_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    #: One transaction per key, ever: a re-run cannot post twice.
    key: Mapped[str] = mapped_column(String(160), unique=True)
    kind: Mapped[str] = mapped_column(String(30))
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    period_id: Mapped[int | None] = mapped_column(ForeignKey("periods.id"))
    memo: Mapped[str] = mapped_column(Text, default="")
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_entries_account", "account_code"),
        Index("ix_ledger_entries_transaction", "transaction_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"))
    account_code: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.code"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
