"""Plans, their rule versions, sponsored schemes and the end of a plan."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
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


class Plan(Base):
    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    current_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class PlanVersion(Base):
    """Every version of a plan's rules is kept; a membership records the version it joined under."""

    __tablename__ = "plan_versions"
    __table_args__ = (UniqueConstraint("plan_id", "version"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    version: Mapped[int] = mapped_column(Integer)
    source_toml: Mapped[str] = mapped_column(Text)
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    rules_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))


# --- sponsored schemes and the end of a plan (issue 8) ---------------------------------------------


class SponsoredScheme(Base):
    """Operator-paid special cover attached to a plan (e.g. COVID-19, 2020): its claims go through
    the normal review and publicity but are paid from the sponsor account, never shared."""

    __tablename__ = "sponsored_schemes"
    __table_args__ = (UniqueConstraint("plan_id", "code"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    code: Mapped[str] = mapped_column(String(40))
    #: The validated scheme rules (domain.schemes.SchemeRules as JSON) and their SHA-256.
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    rules_sha256: Mapped[str] = mapped_column(String(64))
    attached_at: Mapped[datetime] = mapped_column(UtcDateTime())
    attached_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))


class PlanSponsorship(Base):
    """A promise by the sponsor over a range of periods (by publicity day, inclusive): pay every
    member's share ("period", e.g. Ant paid the first apportionment) or what the caps remove
    ("cap_excess")."""

    __tablename__ = "plan_sponsorships"
    __table_args__ = (Index("ix_plan_sponsorships_plan", "plan_id", "from_on"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    kind: Mapped[str] = mapped_column(String(12))
    from_on: Mapped[date] = mapped_column(Date)
    to_on: Mapped[date] = mapped_column(Date)
    memo: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))


class PlanWindDown(Base):
    """The announced end of a plan and how far its wind-down has gone (one row per plan)."""

    __tablename__ = "plan_wind_downs"

    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), primary_key=True)
    #: sponsor_paid or shared_until_end (domain.plans.WindDownRules.rule, as announced)
    rule: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    announced_at: Mapped[datetime] = mapped_column(UtcDateTime())
    announced_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    #: Cover ends at 00:00 on `end_on` in the plan's zone (`end_at`).
    end_on: Mapped[date] = mapped_column(Date)
    end_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: The last day a run-off claim can be reported (end_on − 1 + the claim deadline).
    run_off_until_on: Mapped[date] = mapped_column(Date)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    memberships_ended: Mapped[int | None] = mapped_column(BigInteger)
    refunds: Mapped[int | None] = mapped_column(BigInteger)
    refunded_fen: Mapped[int | None] = mapped_column(BigInteger)
    written_off_fen: Mapped[int | None] = mapped_column(BigInteger)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    final_checkpoint_size: Mapped[int | None] = mapped_column(BigInteger)
    archive_sha256: Mapped[str | None] = mapped_column(String(64))


class PrepaidRefund(Base):
    """What a payer got back of their prepaid balance when the plan ended (one row per payer)."""

    __tablename__ = "prepaid_refunds"

    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), primary_key=True)
    payer_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    refunded_at: Mapped[datetime] = mapped_column(UtcDateTime())
