"""Login rate limiting kept in the database, so every worker sees the same count.

A failed login is an audit row (`login_failed`) naming a keyed hash of the phone number and the
client address; a login is refused while either has too many failures in the window. Nothing is
kept in process memory, so several workers (or a restarted one) enforce the same limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select

from mutualaid.db.models import AuditEvent
from mutualaid.domain.errors import DomainError, Unauthenticated
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import IssuedToken, log_in
from mutualaid.services.context import ServiceContext

ACTION = "login_failed"


class TooManyAttempts(DomainError):
    status = 429


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    window: timedelta = timedelta(minutes=15)
    #: Failures for one phone number within the window before its logins are refused.
    per_phone: int = 5
    #: Failures from one client address within the window (many phones tried from one place).
    per_address: int = 30


DEFAULT_POLICY = ThrottlePolicy()


def _phone_key(ctx: ServiceContext, phone: str) -> str:
    # Keyed, so the audit log does not hold phone numbers in a form anyone can reverse.
    digits = phone.strip().replace(" ", "").replace("-", "")
    return ctx.protector.identity_hash(f"login-phone:{digits}")[:32]


def check_login_allowed(
    ctx: ServiceContext, phone: str, address: str, policy: ThrottlePolicy = DEFAULT_POLICY
) -> None:
    """Refuse (429) while the phone or the address has too many recent failures."""
    since = ctx.clock.now() - policy.window
    key = _phone_key(ctx, phone)
    recent = (
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == ACTION, AuditEvent.occurred_at >= since)
    )
    with ctx.reading() as session:
        by_phone = (
            session.scalar(recent.where(AuditEvent.details["phone_key"].as_string() == key)) or 0
        )
        by_address = (
            session.scalar(recent.where(AuditEvent.details["address"].as_string() == address)) or 0
        )
    if by_phone >= policy.per_phone or by_address >= policy.per_address:
        minutes = int(policy.window.total_seconds() // 60)
        raise TooManyAttempts(
            "too_many_attempts",
            f"too many failed logins: wait {minutes} minutes and try again",
            "phone",
            details={"retry_after_s": int(policy.window.total_seconds())},
        )


def record_failed_login(ctx: ServiceContext, phone: str, address: str) -> None:
    with ctx.transaction() as session:
        audit.record(
            session,
            at=ctx.clock.now(),
            actor_account_id=None,
            action=ACTION,
            subject_type="login",
            subject_id=None,
            phone_key=_phone_key(ctx, phone),
            address=address,
        )


def throttled_log_in(
    ctx: ServiceContext,
    phone: str,
    password: str,
    address: str,
    policy: ThrottlePolicy = DEFAULT_POLICY,
) -> IssuedToken:
    """Log in unless the phone or the address is locked out; a wrong password counts against both.

    The one entry point for the web form and the API, so neither is a way around the limit."""
    check_login_allowed(ctx, phone, address, policy)
    try:
        return log_in(ctx, phone, password)
    except Unauthenticated:
        record_failed_login(ctx, phone, address)
        raise
