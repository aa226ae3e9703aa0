"""Login rate limiting kept in the database, so every worker sees the same count.

A failed login is an audit row (`login_failed`) naming a keyed hash of the phone number and the
client address. A phone is throttled per (phone, address) with a doubling back-off, and an address
by its failures in the window: a stranger's wrong guesses never lock the owner out (security issue
#13, finding 9). Nothing is
kept in process memory, so several workers (or a restarted one) enforce the same limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from mutualaid.db.models import AuditEvent
from mutualaid.domain.errors import DomainError, Unauthenticated
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import IssuedToken, log_in
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import UnitOfWork

ACTION = "login_failed"


class TooManyAttempts(DomainError):
    status = 429


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    #: How far back failures count.
    window: timedelta = timedelta(hours=1)
    #: Failures for one phone from one address before that pair waits (then each further failure
    #: doubles the wait). Counted per pair, so guesses from elsewhere never lock the owner out.
    per_pair: int = 5
    first_wait: timedelta = timedelta(minutes=1)
    longest_wait: timedelta = timedelta(minutes=30)
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
    """Refuse (429, with the seconds to wait) while this phone from this address is backing off,
    or while the address has too many recent failures. One statement over the audit rows."""
    now = ctx.clock.now()
    pair = AuditEvent.details["phone_key"].as_string() == _phone_key(ctx, phone)
    with ctx.reading() as session:
        row = session.execute(
            select(
                func.count().filter(pair),
                func.max(AuditEvent.occurred_at).filter(pair),
                func.count(),
                func.min(AuditEvent.occurred_at),
            ).where(
                AuditEvent.action == ACTION,
                AuditEvent.occurred_at >= now - policy.window,
                AuditEvent.details["address"].as_string() == address,
            )
        ).one()
    by_pair, last_pair, by_address, first_address = row
    wait = timedelta(0)
    if by_pair >= policy.per_pair and last_pair is not None:
        backoff = min(policy.first_wait * 2 ** (by_pair - policy.per_pair), policy.longest_wait)
        wait = _as_utc(last_pair) + backoff - now
    if by_address >= policy.per_address and first_address is not None:
        wait = max(wait, _as_utc(first_address) + policy.window - now)
    if wait > timedelta(0):
        seconds = max(1, math.ceil(wait.total_seconds()))
        raise TooManyAttempts(
            "too_many_attempts",
            f"too many failed logins: wait {math.ceil(seconds / 60)} minutes and try again",
            "phone",
            details={"retry_after_s": seconds},
        )


def _as_utc(moment: datetime) -> datetime:
    # SQLite hands aggregates back without a time zone; every stored moment is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def record_failed_login(ctx: ServiceContext, phone: str, address: str) -> None:
    uow: UnitOfWork[None] = ctx.unit_of_work()
    with uow:
        audit.record(
            uow.session,
            at=ctx.clock.now(),
            actor_account_id=None,
            action=ACTION,
            subject_type="login",
            subject_id=None,
            phone_key=_phone_key(ctx, phone),
            address=address,
        )
        uow.commit(None)


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
