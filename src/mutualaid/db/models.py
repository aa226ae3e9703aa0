"""Tables. Money columns are BigInteger fen named *_fen; instants are aware UTC *_at; dates *_on."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# BIGINT on PostgreSQL; INTEGER on SQLite, where only "INTEGER PRIMARY KEY" autoincrements.
Id = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both databases (SQLite stores naive text, so we re-attach UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC instant is required")
        from datetime import UTC

        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        from datetime import UTC

        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Account(Base):
    """Someone who logs in: a member (and payer for their family) or staff."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    #: argon2id; NULL for an account created by a bulk import until its owner sets a password.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), default="member")
    display_name: Mapped[str | None] = mapped_column(String(100))
    locale: Mapped[str] = mapped_column(String(10), default="zh_CN")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ApiToken(Base):
    """Bearer tokens and web sessions, stored hashed so a leaked table grants nothing."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())


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


class Person(Base):
    """A covered person. Their identity number is never stored in plain text.

    `identity_hash` (keyed HMAC) enforces one person per identity; `identity_ciphertext` lets an
    operator read it back when a claim needs it.
    """

    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    relation: Mapped[str] = mapped_column(String(10))
    identity_hash: Mapped[str] = mapped_column(String(64), unique=True)
    identity_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    name_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
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


class AuditEvent(Base):
    """One row per state change: who did what to which thing, and when."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_subject", "subject_type", "subject_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    actor_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    action: Mapped[str] = mapped_column(String(50), index=True)
    subject_type: Mapped[str] = mapped_column(String(30))
    subject_id: Mapped[int | None] = mapped_column(BigInteger)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class IdempotencyKey(Base):
    """A retried mutation with the same key returns the first answer instead of acting twice."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("account_id", "key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    operation: Mapped[str] = mapped_column(String(50))
    request_sha256: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class LogEntry(Base):
    """A leaf of the transparency log, queued in the transaction of the change it records.

    This table is the outbox: a change and its leaf commit (or roll back) together. The sequencer
    later gives queued leaves their `leaf_index` (a single writer, so no gaps and no duplicates).
    """

    __tablename__ = "log_entries"
    __table_args__ = (
        Index("ix_log_entries_subject", "subject_type", "subject_ref"),
        Index("ix_log_entries_unsequenced", "id", sqlite_where=text("leaf_index IS NULL"),
              postgresql_where=text("leaf_index IS NULL")),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    leaf_type: Mapped[str] = mapped_column(String(40))
    leaf_data: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    leaf_index: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    subject_type: Mapped[str] = mapped_column(String(30))
    subject_ref: Mapped[str] = mapped_column(String(80))
    queued_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Notification(Base):
    """In-app notices; an outbound channel (SMS, e-mail) is sent after commit from these rows."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_account", "account_id", "id"),
        Index("ix_notifications_unsent", "id", sqlite_where=text("sent_at IS NULL"),
              postgresql_where=text("sent_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    subject_type: Mapped[str] = mapped_column(String(30))
    subject_id: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: Set once the outbound channel has taken it (the table doubles as the channel's outbox).
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


OPEN_CLAIM_STATES_SQL = (
    "state IN ('submitted', 'in_review', 'investigating', 'awaiting_documents', 're_review', "
    "'approval_proposed', 'in_publicity', 'approved', 'jury_voting')"
)


class Claim(Base):
    __tablename__ = "claims"
    __table_args__ = (
        # One open claim per person per plan, guaranteed by the database.
        Index("uq_claims_open_person", "plan_id", "person_id", unique=True,
              sqlite_where=text(OPEN_CLAIM_STATES_SQL), postgresql_where=text(OPEN_CLAIM_STATES_SQL)),
        Index("ix_claims_plan_state", "plan_id", "state"),
        Index("ix_claims_claimant", "claimant_account_id"),
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
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


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
    __table_args__ = (UniqueConstraint("claim_id", "sha256"), Index("ix_evidence_sha256", "sha256"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claims.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(100))
    label: Mapped[str] = mapped_column(String(100))
    purpose: Mapped[str] = mapped_column(String(20), default="claim")
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime())


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


class JurorCertification(Base):
    __tablename__ = "juror_certifications"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"),
                                            primary_key=True)
    passed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    score: Mapped[int] = mapped_column(Integer)


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
