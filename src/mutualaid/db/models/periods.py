"""Periods and what is stored per period: cohorts, charge exceptions, the charges tree, bands."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from mutualaid.db.models.base import Base, Id, UtcDateTime

# --- periods, collections and the ledger (issue 5) -----------------------------------------------
# What every sharing member has in common is stored once per period (the share, the figures); only
# what differs is a row: exceptions to the share, failed collections, prepaid balances. A member's
# charge in a period follows from the period row, their membership's dates and those exceptions.


class Period(Base):
    """One sharing period of a plan, from its lock (00:00 on publicity day) to its payouts."""

    __tablename__ = "periods"
    __table_args__ = (
        UniqueConstraint("plan_id", "publicity_on"),
        Index("ix_periods_plan_lock", "plan_id", "lock_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    ref: Mapped[str] = mapped_column(String(80), unique=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    plan_version: Mapped[int] = mapped_column(Integer)
    publicity_on: Mapped[date] = mapped_column(Date)
    debit_on: Mapped[date] = mapped_column(Date)
    lock_at: Mapped[datetime] = mapped_column(UtcDateTime())
    state: Mapped[str] = mapped_column(String(12))
    #: Who bears what the caps remove: "sponsor" or "prorate".
    cap_excess: Mapped[str] = mapped_column(String(10))
    fee_bp: Mapped[int] = mapped_column(Integer)
    per_case_cap_fen: Mapped[int | None] = mapped_column(BigInteger)
    annual_cap_fen: Mapped[int | None] = mapped_column(BigInteger)
    payment_retry_days: Mapped[int] = mapped_column(Integer)
    member_count: Mapped[int | None] = mapped_column(BigInteger)
    case_count: Mapped[int | None] = mapped_column(Integer)
    aid_fen: Mapped[int | None] = mapped_column(BigInteger)
    sponsored_aid_fen: Mapped[int | None] = mapped_column(BigInteger)
    fee_fen: Mapped[int | None] = mapped_column(BigInteger)
    surplus_in_fen: Mapped[int | None] = mapped_column(BigInteger)
    uncapped_share_fen: Mapped[int | None] = mapped_column(BigInteger)
    share_fen: Mapped[int | None] = mapped_column(BigInteger)
    total_charged_fen: Mapped[int | None] = mapped_column(BigInteger)
    capped_fen: Mapped[int | None] = mapped_column(BigInteger)
    sponsor_fen: Mapped[int | None] = mapped_column(BigInteger)
    prorated_fen: Mapped[int | None] = mapped_column(BigInteger)
    surplus_out_fen: Mapped[int | None] = mapped_column(BigInteger)
    charges_root: Mapped[str | None] = mapped_column(String(64))
    charges_leaves: Mapped[int | None] = mapped_column(Integer)
    commitment_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    collect_cursor: Mapped[int | None] = mapped_column(BigInteger)
    failed_fen: Mapped[int | None] = mapped_column(BigInteger)
    locked_at: Mapped[datetime] = mapped_column(UtcDateTime())
    computed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    committed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    collected_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: Why the sponsor paid every member's share of this period (issue 8): "promotion"; NULL: shared.
    sponsored_by: Mapped[str | None] = mapped_column(String(20))


class PeriodCohort(Base):
    """Members of a period who pay the same charge (they differ only when the annual cap binds)."""

    __tablename__ = "period_cohorts"

    period_id: Mapped[int] = mapped_column(
        ForeignKey("periods.id", ondelete="CASCADE"), primary_key=True
    )
    #: The first period of the calendar year its members shared in.
    cohort_on: Mapped[date] = mapped_column(Date, primary_key=True)
    ytd_fen: Mapped[int] = mapped_column(BigInteger)
    member_count: Mapped[int] = mapped_column(BigInteger)
    charge_fen: Mapped[int] = mapped_column(BigInteger)


class PeriodChargeException(Base):
    """A membership whose charge in a period is not its cohort's: excluded (suspended at the lock)
    or cap_adjusted (its own year so far differs, e.g. after leaving and rejoining)."""

    __tablename__ = "period_charge_exceptions"
    __table_args__ = (
        UniqueConstraint("period_id", "membership_id"),
        Index("ix_period_charge_exceptions_membership", "membership_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id", ondelete="CASCADE"))
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"))
    payer_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(20))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class PeriodChargeTree(Base):
    """The leaf hashes of a period's charges tree (one per non-empty block of 1,024 membership
    ids), kept so that a member's inclusion proof needs only their own block re-read."""

    __tablename__ = "period_charge_trees"

    period_id: Mapped[int] = mapped_column(
        ForeignKey("periods.id", ondelete="CASCADE"), primary_key=True
    )
    block_bits: Mapped[int] = mapped_column(Integer)
    #: Block indexes, 8 bytes big-endian each, ascending.
    block_indexes: Mapped[bytes] = mapped_column(LargeBinary)
    #: The matching leaf hashes, 32 bytes each.
    leaf_hashes: Mapped[bytes] = mapped_column(LargeBinary)


class PeriodBand(Base):
    """One age band of a period closed under a non-uniform sharing rule (proportional or
    conditional mean): its weight per member, its part of the need and the share its members pay.
    Uniform periods have none."""

    __tablename__ = "period_bands"

    period_id: Mapped[int] = mapped_column(
        ForeignKey("periods.id", ondelete="CASCADE"), primary_key=True
    )
    band_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    from_age: Mapped[int] = mapped_column(Integer)
    to_age: Mapped[int] = mapped_column(Integer)
    #: Born on or before this day: at least `from_age` at the lock (None for the first band).
    born_by_on: Mapped[date | None] = mapped_column(Date)
    #: The weight of one member, an exact fraction "numerator/denominator".
    weight: Mapped[str] = mapped_column(Text)
    member_count: Mapped[int] = mapped_column(BigInteger)
    band_total_fen: Mapped[int] = mapped_column(BigInteger)
    uncapped_share_fen: Mapped[int] = mapped_column(BigInteger)
    share_fen: Mapped[int] = mapped_column(BigInteger)


class PeriodBandGroup(Base):
    """Members of a period closed under a non-uniform rule when the annual cap may bind who have
    paid the same this year and pay the same now: one cohort (first period of the year shared
    in), born in one interval between the band edges of the year's lock dates. Members of a
    period without such rows pay their band's share."""

    __tablename__ = "period_band_groups"

    period_id: Mapped[int] = mapped_column(
        ForeignKey("periods.id", ondelete="CASCADE"), primary_key=True
    )
    cohort_on: Mapped[date] = mapped_column(Date, primary_key=True)
    interval_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Born after this day (None: no lower end) and on or before `born_by_on` (None: no upper end).
    born_after_on: Mapped[date | None] = mapped_column(Date)
    born_by_on: Mapped[date | None] = mapped_column(Date)
    band_index: Mapped[int] = mapped_column(Integer)
    ytd_fen: Mapped[int] = mapped_column(BigInteger)
    member_count: Mapped[int] = mapped_column(BigInteger)
    charge_fen: Mapped[int] = mapped_column(BigInteger)
