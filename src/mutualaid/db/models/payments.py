"""Payment providers: debit agreements, each movement asked of a provider, its notifications and
the staff releases a large payout waits for."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mutualaid.db.models.base import Base, Id, UtcDateTime


class PaymentAgreement(Base):
    """A payer's debit authorisation (Alipay: a withholding agreement) with one provider."""

    __tablename__ = "payment_agreements"
    __table_args__ = (
        UniqueConstraint("external_no", "provider"),
        UniqueConstraint("agreement_no", "provider"),
        Index("ix_payment_agreements_account", "account_id", "provider"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    #: Ours, sent to the provider when signing starts.
    external_no: Mapped[str] = mapped_column(String(64))
    #: The provider's, known once the payer has signed.
    agreement_no: Mapped[str | None] = mapped_column(String(64))
    #: The payer's id at the provider (the payee of their payouts).
    provider_user_id: Mapped[str | None] = mapped_column(String(64))
    #: pending, active, ended
    status: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    signed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ProviderPayment(Base):
    """One movement asked of a provider: a debit (money in) or a transfer (a payout)."""

    __tablename__ = "provider_payments"
    __table_args__ = (
        UniqueConstraint("key", "provider"),
        UniqueConstraint("out_ref", "provider"),
        #: One provider reference settles one movement, ever.
        UniqueConstraint("provider_ref", "provider"),
        Index("ix_provider_payments_period", "period_id"),
        Index("ix_provider_payments_status", "kind", "status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    #: debit, transfer
    kind: Mapped[str] = mapped_column(String(10))
    #: Our idempotency key (``<period>:<payer>``, ``payout:<claim>``).
    key: Mapped[str] = mapped_column(String(160))
    #: What the provider knows it by (out_trade_no, out_biz_no).
    out_ref: Mapped[str] = mapped_column(String(64))
    #: The provider's reference (trade_no, order_id), once it gave one.
    provider_ref: Mapped[str | None] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    #: held (a payout waiting for its releases), pending, paid, failed
    status: Mapped[str] = mapped_column(String(10))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    period_id: Mapped[int | None] = mapped_column(ForeignKey("periods.id"))
    membership_id: Mapped[int | None] = mapped_column(ForeignKey("memberships.id"))
    claim_id: Mapped[int | None] = mapped_column(ForeignKey("claims.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: When the movement was asked of the provider (a payout's row is created at its release).
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    settled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ProviderNotification(Base):
    """Each asynchronous notification taken in, once (a replay finds its row and changes nothing)."""

    __tablename__ = "provider_notifications"
    __table_args__ = (UniqueConstraint("notify_id", "provider"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    notify_id: Mapped[str] = mapped_column(String(128))
    notify_type: Mapped[str] = mapped_column(String(60))
    out_ref: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(30))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())


class PayoutRelease(Base):
    """A staff member's release of a held payout; two different staff release it."""

    __tablename__ = "payout_releases"
    __table_args__ = (UniqueConstraint("payment_id", "account_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("provider_payments.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    released_at: Mapped[datetime] = mapped_column(UtcDateTime())
