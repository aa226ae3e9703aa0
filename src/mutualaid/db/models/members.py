"""People and their memberships of a plan."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from mutualaid.db.models.base import Base, Id, UtcDateTime


class Person(Base):
    """A covered person. Their identity number is never stored in plain text.

    `identity_hash` (keyed HMAC) enforces one person per identity; `identity_ciphertext` lets an
    operator read it back when a claim needs it. All three are under the secret key version
    `key_version` (services/personal_data.py; `mutualaid keys rotate` moves them to the current).
    """

    __tablename__ = "persons"
    #: Finds the people a key rotation has still to move, and counts them per version, without
    #: a scan (`mutualaid keys status`).
    __table_args__ = (Index("ix_persons_key_version", "key_version"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    relation: Mapped[str] = mapped_column(String(10))
    identity_hash: Mapped[str] = mapped_column(String(64), unique=True)
    identity_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    name_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    key_version: Mapped[int] = mapped_column(SmallInteger, server_default=text("1"))
    name_masked: Mapped[str] = mapped_column(String(50))
    birth_on: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(1))
    province_code: Mapped[str] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


ACTIVE_STATES_SQL = "state IN ('waiting', 'covered', 'suspended')"


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (
        # One active membership per person per plan, enforced by the database, not by hope:
        # two concurrent joins for the same person cannot both commit.
        Index(
            "uq_memberships_active_person",
            "plan_id",
            "person_id",
            unique=True,
            sqlite_where=text(ACTIVE_STATES_SQL),
            postgresql_where=text(ACTIVE_STATES_SQL),
        ),
        Index("ix_memberships_plan_state", "plan_id", "state"),
        Index("ix_memberships_payer", "payer_account_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    plan_version: Mapped[int] = mapped_column(Integer)
    #: The rules hash the member agreed to when joining (issue 17; None: joined before consent
    #: was recorded, or imported by the operator).
    rules_sha256: Mapped[str | None] = mapped_column(String(64))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    payer_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    state: Mapped[str] = mapped_column(String(10))
    joined_at: Mapped[datetime] = mapped_column(UtcDateTime())
    joined_on: Mapped[date] = mapped_column(Date)
    waiting_ends_on: Mapped[date] = mapped_column(Date)
    covered_from_on: Mapped[date] = mapped_column(Date)
    ages_out_on: Mapped[date] = mapped_column(Date)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(20))


#: This year's leavers of a plan (who may have rejoined: the annual cap counts both memberships),
#: found without a scan over every membership. Only ended memberships are in it. (Issue 5.)
Index(
    "ix_memberships_ended",
    Membership.plan_id,
    Membership.ended_at,
    sqlite_where=text("ended_at IS NOT NULL"),
    postgresql_where=text("ended_at IS NOT NULL"),
)


class AgeOutMove(Base):
    """A member's opt-in to move, when they age out of their plan, into the plan its rules name
    (`age_out_move.to_plan`), and the move once made: one event recorded on both memberships
    (the old one ends with reason `move_out`, the new one starts with `move_in`). Issue 19."""

    __tablename__ = "age_out_moves"
    __table_args__ = (Index("ix_age_out_moves_pending", "moved_at", "from_membership_id"),)

    from_membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"), primary_key=True)
    opted_in_at: Mapped[datetime] = mapped_column(UtcDateTime())
    to_membership_id: Mapped[int | None] = mapped_column(ForeignKey("memberships.id"), unique=True)
    moved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class MembershipRefund(Base):
    """Shares a membership paid, refunded (an illness diagnosed in the waiting period ends the
    membership and refunds them, issue 19): `pending` until priced, then `due` until the payment
    provider has paid it back."""

    __tablename__ = "membership_refunds"
    __table_args__ = (Index("ix_membership_refunds_status", "status", "plan_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    #: One refund per membership, ever: a re-run cannot refund twice.
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"), unique=True)
    payer_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(20))
    #: pending (not yet priced), due, paid, none (nothing was paid): services/collections/refunds.py
    status: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
