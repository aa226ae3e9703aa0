"""Tables. Money columns are BigInteger fen named *_fen; instants are aware UTC *_at; dates *_on."""

from __future__ import annotations

from collections.abc import Callable
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
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from mutualaid.domain.risk import BANDS, phash_band

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
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())


class StaffSecondFactor(Base):
    """A staff account's TOTP factor: the secret encrypted, recovery codes only as hashes."""

    __tablename__ = "staff_second_factors"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    #: None until the staff member proves with a code that their authenticator holds the secret.
    confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    #: The last accepted time step: a code from it (or earlier) is a replay.
    last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    recovery_hashes: Mapped[list[str]] = mapped_column(JSON)


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
        Index(
            "ix_log_entries_unsequenced",
            "id",
            sqlite_where=text("leaf_index IS NULL"),
            postgresql_where=text("leaf_index IS NULL"),
        ),
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
        Index(
            "ix_notifications_unsent",
            "id",
            sqlite_where=text("sent_at IS NULL"),
            postgresql_where=text("sent_at IS NULL"),
        ),
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


class JurorCertification(Base):
    __tablename__ = "juror_certifications"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
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


# --- transparency log: sequencer state, stored tree nodes, checkpoints (issue 3) ------------------


class LogState(Base):
    """The sequencer's state: one row (id 1), locked FOR UPDATE by whoever integrates leaves.

    `compact_range` is the concatenation of the 32-byte perfect-subtree roots covering
    [0, size) (tallest first), all the sequencer needs to append and to compute the root.
    """

    __tablename__ = "log_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    compact_range: Mapped[bytes] = mapped_column(LargeBinary)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class LogTile(Base):
    """The Merkle tree, stored in tiles of 4 levels (`transparency.tiles.STORAGE_HEIGHT`).

    Tile (level t, idx j) holds the nodes of tree level 4t with indexes 16j..16j+15 (level 0:
    the leaf hashes) and the complete nodes above them inside that subtree, bottom row first
    (`tiles.encode_storage_tile`). Full tiles never change; the sequencer rewrites the rightmost,
    partial tile of each level as the log grows. A proof reads one row per 4 tree levels.
    """

    __tablename__ = "log_tiles"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hashes: Mapped[bytes] = mapped_column(LargeBinary)


class LogCheckpoint(Base):
    """A signed checkpoint (C2SP tlog-checkpoint) with the cosignatures gathered for it.

    `published` once `quorum` witnesses cosigned; the keys are recorded as they were configured
    when it was signed, so a proof bundle can be served from this row alone.
    """

    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, unique=True)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    log_key: Mapped[str] = mapped_column(String(300))
    witness_keys: Mapped[list[str]] = mapped_column(JSON, default=list)
    quorum: Mapped[int] = mapped_column(Integer)
    cosigners: Mapped[int] = mapped_column(Integer, default=0)
    published: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class LogWitnessState(Base):
    """The size of the last checkpoint each witness is known to have cosigned (tlog-witness "old")."""

    __tablename__ = "log_witness_states"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


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


#: This year's leavers of a plan (who may have rejoined: the annual cap counts both memberships),
#: found without a scan over every membership. Only ended memberships are in it. (Issue 5.)
Index(
    "ix_memberships_ended",
    Membership.plan_id,
    Membership.ended_at,
    sqlite_where=text("ended_at IS NOT NULL"),
    postgresql_where=text("ended_at IS NOT NULL"),
)


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
