"""Juror certifications, jury cases, seats and votes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from mutualaid.db.models.base import Base, Id, UtcDateTime


class JurorCertification(Base):
    __tablename__ = "juror_certifications"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    passed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    score: Mapped[int] = mapped_column(Integer)


class JuryCase(Base):
    """One round of a jury vote on a claim."""

    __tablename__ = "jury_cases"
    __table_args__ = (UniqueConstraint("claim_id", "round"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20))  # awaiting_seed, open, closed
    referred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    opens_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    closes_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    seats: Mapped[int] = mapped_column(Integer, default=0)
    candidates_sha256: Mapped[str | None] = mapped_column(String(64))
    seed_hex: Mapped[str | None] = mapped_column(String(64))
    seed_tree_size: Mapped[int | None] = mapped_column(BigInteger)
    outcome: Mapped[str | None] = mapped_column(String(20))
    approve_votes: Mapped[int | None] = mapped_column(Integer)
    reject_votes: Mapped[int | None] = mapped_column(Integer)
    recusals: Mapped[int | None] = mapped_column(Integer)


class JurySeat(Base):
    """A drawn panel seat (panel mode)."""

    __tablename__ = "jury_seats"
    __table_args__ = (UniqueConstraint("jury_case_id", "juror_account_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    jury_case_id: Mapped[int] = mapped_column(ForeignKey("jury_cases.id", ondelete="CASCADE"))
    juror_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    juror_ref: Mapped[str] = mapped_column(String(64))
    drawn_at: Mapped[datetime] = mapped_column(UtcDateTime())


class JuryVote(Base):
    """One member, one vote: the UNIQUE constraint makes a second vote impossible, even racing."""

    __tablename__ = "jury_votes"
    __table_args__ = (UniqueConstraint("jury_case_id", "juror_account_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    jury_case_id: Mapped[int] = mapped_column(ForeignKey("jury_cases.id", ondelete="CASCADE"))
    juror_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    choice: Mapped[str] = mapped_column(String(10))  # approve, reject, recuse
    cast_at: Mapped[datetime] = mapped_column(UtcDateTime())
