"""Claims, their events, evidence, investigation reports and objections."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from mutualaid.db.models.base import Base, Id, UtcDateTime
from mutualaid.db.models.members import Person
from mutualaid.domain.risk_scores import BANDS, phash_band

OPEN_CLAIM_STATES_SQL = (
    "state IN ('submitted', 'in_review', 'investigating', 'awaiting_documents', 're_review', "
    "'approval_proposed', 'in_publicity', 'approved', 'jury_voting')"
)


def _person_province(context: Any) -> str | None:
    """Claim.province_code when not given: the person's province, read as the row is inserted."""
    person_id = context.get_current_parameters().get("person_id")
    return context.connection.scalar(  # type: ignore[no-any-return]
        select(Person.province_code).where(Person.id == person_id)
    )


def _phash_band(band: int) -> Callable[[Any], int | None]:
    """Evidence.phash_bandN when not given: that band of the row's image hash."""

    def default(context: Any) -> int | None:
        phash = context.get_current_parameters().get("phash")
        return None if phash is None else phash_band(int(phash, 16), band)

    return default


class Claim(Base):
    __tablename__ = "claims"
    __table_args__ = (
        # One open claim per person per plan, guaranteed by the database.
        Index(
            "uq_claims_open_person",
            "plan_id",
            "person_id",
            unique=True,
            sqlite_where=text(OPEN_CLAIM_STATES_SQL),
            postgresql_where=text(OPEN_CLAIM_STATES_SQL),
        ),
        Index("ix_claims_plan_state", "plan_id", "state"),
        Index("ix_claims_claimant", "claimant_account_id"),
        # Risk lookups for one claim (issue 9): its window, its keys' counts, its links.
        Index("ix_claims_plan_reported", "plan_id", "reported_on"),
        Index("ix_claims_plan_hospital", "plan_id", "hospital", "reported_on"),
        Index("ix_claims_plan_doctor", "plan_id", "doctor", "reported_on"),
        Index(
            "ix_claims_plan_illness",
            "plan_id",
            "illness_code",
            "reported_on",
            "age_at_diagnosis",
            "province_code",
        ),
        Index("ix_claims_plan_province", "plan_id", "province_code", "reported_on"),
        Index("ix_claims_contact_phone", "contact_phone_hash"),
        Index("ix_claims_payee_account", "payee_account_hash"),
        Index("ix_claims_address", "address_hash"),
        Index("ix_claims_device", "device_hash"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    ref: Mapped[str] = mapped_column(String(40), unique=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    plan_version: Mapped[int] = mapped_column(Integer)
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    claimant_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    illness_code: Mapped[str] = mapped_column(String(20))
    tier: Mapped[str] = mapped_column(String(10))
    accident: Mapped[bool] = mapped_column()
    diagnosed_on: Mapped[date] = mapped_column(Date)
    hospital: Mapped[str] = mapped_column(String(200))
    age_at_diagnosis: Mapped[int] = mapped_column(Integer)
    payout_fen: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(20))
    reported_at: Mapped[datetime] = mapped_column(UtcDateTime())
    reported_on: Mapped[date] = mapped_column(Date)
    initial_reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    investigator_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    decision_reason: Mapped[str | None] = mapped_column(String(40))
    decision_note: Mapped[str | None] = mapped_column(Text)
    publicity_on: Mapped[date | None] = mapped_column(Date)
    publicity_closes_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    approved_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    period_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    sponsored: Mapped[bool] = mapped_column(default=False)
    #: Optional link data (issue 9): contacts are stored only as keyed hashes, for matching.
    doctor: Mapped[str | None] = mapped_column(String(100))
    contact_phone_hash: Mapped[str | None] = mapped_column(String(64))
    payee_account_hash: Mapped[str | None] = mapped_column(String(64))
    address_hash: Mapped[str | None] = mapped_column(String(64))
    device_hash: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: The sponsored scheme the claim was filed under (issue 8); NULL for the plan's own cover.
    scheme_id: Mapped[int | None] = mapped_column(BigInteger)
    #: The person's province when the claim was filed (issue 9: outlier counts by index).
    province_code: Mapped[str | None] = mapped_column(String(2), default=_person_province)


class ClaimEventRow(Base):
    """The claim's timeline: every transition, with what the member is told and what staff noted."""

    __tablename__ = "claim_events"
    __table_args__ = (Index("ix_claim_events_claim", "claim_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    event: Mapped[str] = mapped_column(String(30))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    reason_code: Mapped[str | None] = mapped_column(String(40))
    public_note: Mapped[str | None] = mapped_column(Text)
    internal_note: Mapped[str | None] = mapped_column(Text)


class Evidence(Base):
    """A document attached to a claim (or an objection). The file lives, encrypted, in the
    content-addressed evidence store under its SHA-256; only the hash goes on the public log."""

    __tablename__ = "evidence"
    __table_args__ = (
        UniqueConstraint("claim_id", "sha256"),
        Index("ix_evidence_sha256", "sha256"),
        *(Index(f"ix_evidence_phash_band{b}", f"phash_band{b}") for b in range(BANDS)),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(100))
    label: Mapped[str] = mapped_column(String(100))
    purpose: Mapped[str] = mapped_column(String(20), default="claim")
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: 64-bit difference hash of an image (hex), for near-duplicate search (issue 9).
    phash: Mapped[str | None] = mapped_column(String(16))
    #: The date printed on the document (a medical record's date), when given.
    document_on: Mapped[date | None] = mapped_column(Date)
    #: The image hash's four 16-bit bands (issue 9: near-duplicate candidates by index).
    phash_band0: Mapped[int | None] = mapped_column(Integer, default=_phash_band(0))
    phash_band1: Mapped[int | None] = mapped_column(Integer, default=_phash_band(1))
    phash_band2: Mapped[int | None] = mapped_column(Integer, default=_phash_band(2))
    phash_band3: Mapped[int | None] = mapped_column(Integer, default=_phash_band(3))


class InvestigationReport(Base):
    __tablename__ = "investigation_reports"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id", ondelete="CASCADE"), index=True)
    investigator_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    findings: Mapped[str] = mapped_column(Text)
    recommendation: Mapped[str] = mapped_column(String(10))
    cost_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    filed_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Objection(Base):
    """Any covered member may object once per published case."""

    __tablename__ = "objections"
    __table_args__ = (UniqueConstraint("claim_id", "objector_account_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id", ondelete="CASCADE"), index=True)
    objector_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    reason: Mapped[str] = mapped_column(Text)
    evidence_sha256: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(10), default="pending")
    filed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    review_note: Mapped[str | None] = mapped_column(Text)
