"""Fraud records and appeals, claim risk scores, their signals and reviewer feedback."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from mutualaid.db.models.base import Base, Id, UtcDateTime


class FraudRecord(Base):
    """A proven fraud: the person loses juror status and may not rejoin (appealable, so revocable)."""

    __tablename__ = "fraud_records"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    claim_id: Mapped[int | None] = mapped_column(ForeignKey("claims.id"))
    reason: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


# --- risk signals, reviewer feedback, fraud appeals (issue 9) -------------------------------------


class ClaimRisk(Base):
    """A claim's latest risk score (the sum of its fired signals' weights, capped at 100)."""

    __tablename__ = "claim_risks"
    __table_args__ = (Index("ix_claim_risks_score", "score"),)

    claim_id: Mapped[int] = mapped_column(
        ForeignKey("claims.id", ondelete="CASCADE"), primary_key=True
    )
    score: Mapped[int] = mapped_column(Integer)
    level: Mapped[str] = mapped_column(String(10))
    #: field or desk: where the score sends the investigation.
    mode: Mapped[str] = mapped_column(String(10))
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ClaimRiskSignal(Base):
    """One signal that fired on a claim, with the numbers behind its explanation."""

    __tablename__ = "claim_risk_signals"
    __table_args__ = (
        UniqueConstraint("claim_id", "code"),
        Index("ix_claim_risk_signals_code", "code"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(40))
    weight: Mapped[int] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class RiskSignalFeedback(Base):
    """A reviewer's word on whether a signal helped on a case (one per reviewer, signal, case)."""

    __tablename__ = "risk_signal_feedback"
    __table_args__ = (
        UniqueConstraint("claim_id", "code", "reviewer_id"),
        Index("ix_risk_signal_feedback_code", "code"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(40))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    useful: Mapped[bool] = mapped_column()
    note: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())


class FraudAppeal(Base):
    """A member's appeal against a fraud record; upheld, it revokes the record."""

    __tablename__ = "fraud_appeals"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    fraud_record_id: Mapped[int] = mapped_column(ForeignKey("fraud_records.id"), unique=True)
    filed_by: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    reason: Mapped[str] = mapped_column(Text)
    filed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    state: Mapped[str] = mapped_column(String(10), default="pending")
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decision_note: Mapped[str | None] = mapped_column(Text)
