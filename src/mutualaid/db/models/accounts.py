"""Accounts, API tokens, the audit trail, idempotency keys and notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from mutualaid.db.models.base import Base, Id, UtcDateTime


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
    #: When the owner proved with an SMS code that the phone is theirs (None: not yet).
    phone_verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: Where outbound messages go: "sms", "email" or "app" (the operator's app, by webhook).
    notify_channel: Mapped[str] = mapped_column(String(10), default="sms", server_default="sms")
    #: False: only essential messages (claim decisions, failed debits, codes) leave the plan.
    notify_optional: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default=text("true")
    )
    email: Mapped[str | None] = mapped_column(String(254))


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
    #: The secret key version `secret_ciphertext` is under (services/personal_data.py).
    key_version: Mapped[int] = mapped_column(SmallInteger, server_default=text("1"))
    #: None until the staff member proves with a code that their authenticator holds the secret.
    confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    #: The last accepted time step: a code from it (or earlier) is a replay.
    last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    recovery_hashes: Mapped[list[str]] = mapped_column(JSON)


class AccountInvitation(Base):
    """The one-time code that lets the owner of an imported, passwordless account bind it
    (security issue #13, finding 1). Stored as a hash only; deleted when used."""

    __tablename__ = "account_invitations"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: Wrong codes tried against this invitation; it is void after a few.
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)


class RateCounter(Base):
    """Mutating requests per key (a keyed hash of a token or an address) per fixed window."""

    __tablename__ = "rate_counters"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    window_index: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)


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


class Notification(Base):
    """In-app notices; an outbound channel (SMS, e-mail) is sent after commit from these rows."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_account", "account_id", "id"),
        Index(
            "ix_notifications_unsent",
            "id",
            sqlite_where=text("sent_at IS NULL AND dead_at IS NULL"),
            postgresql_where=text("sent_at IS NULL AND dead_at IS NULL"),
        ),
        Index(
            "ix_notifications_dead",
            "id",
            sqlite_where=text("dead_at IS NOT NULL"),
            postgresql_where=text("dead_at IS NOT NULL"),
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
    #: The channel that took it ("email", "sms", "app", "log"), or "none" for an opted-out notice.
    channel: Mapped[str | None] = mapped_column(String(10))
    #: Failed deliveries so far; the next try waits until `next_attempt_at` (back-off).
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: A dispatcher's claim: no other dispatcher takes the row before `leased_until`.
    lease_token: Mapped[str | None] = mapped_column(String(32))
    leased_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: Set when the tries are spent (the dead letters an operator reviews and retries).
    dead_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: Why the last try failed (the channel's words; never an address or the message body).
    last_error: Mapped[str | None] = mapped_column(String(200))


class PhoneCode(Base):
    """A one-time SMS code that proves a phone is the account owner's (at registration or on a
    change of phone). Stored as a keyed hash only; deleted when used."""

    __tablename__ = "phone_codes"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    #: The number being proved (the new one on a change of phone).
    phone: Mapped[str] = mapped_column(String(20))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
