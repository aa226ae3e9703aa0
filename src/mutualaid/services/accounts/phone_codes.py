"""Proving a phone number with a one-time SMS code, at registration and on a change of phone.

An account is usable before its phone is proved (existing flows keep working) and shows as
unverified until its owner enters the code. A change of phone takes effect only once the code
sent to the new number is entered. Codes: 6 digits, stored as a keyed hash, valid 10 minutes,
void after 5 wrong tries, one per minute and a few per hour per phone and per address; sent at once
through the SMS channel (never stored in clear, never logged).
"""

from __future__ import annotations

import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from mutualaid.db.models import Account, PhoneCode
from mutualaid.domain.accounts import normalise_phone
from mutualaid.domain.errors import Conflict, DomainError, TooManyRequests
from mutualaid.services import audit
from mutualaid.services.accounts.rate_limits import check_phone_code
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import UnitOfWork
from mutualaid.services.notifications.channels import DeliveryFailed
from mutualaid.services.notifications.dispatch import deliver_now

CODE_DIGITS = 6
CODE_LIFETIME = timedelta(minutes=10)
MAX_WRONG_CODES = 5
RESEND_AFTER = timedelta(seconds=60)


class ChannelUnavailable(DomainError):
    status = 503


@dataclass(frozen=True, slots=True)
class CodeSent:
    #: The number the code went to, masked ("139****5678").
    phone_masked: str
    expires_at: datetime
    #: The channel that took it ("sms", or "log" where the operator set no SMS gateway).
    channel: str


@dataclass(frozen=True, slots=True)
class PhoneStatus:
    phone: str
    verified_at: datetime | None


def mask_phone(phone: str) -> str:
    return phone[:3] + "*" * max(0, len(phone) - 7) + phone[-4:] if len(phone) > 7 else "****"


def _code_hash(ctx: ServiceContext, account_id: int, phone: str, code: str) -> str:
    return ctx.protector.identity_hash(f"phone-code:{account_id}:{phone}:{code.strip()}")


def send_phone_code(
    ctx: ServiceContext, account_id: int, *, new_phone: str | None = None, address: str = ""
) -> CodeSent:
    """Send a code that proves the account's phone, or `new_phone` for a change of phone."""
    wanted = normalise_phone(new_phone) if new_phone is not None else None
    now = ctx.clock.now()
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    uow: UnitOfWork[str] = ctx.unit_of_work()
    with uow:
        session = uow.session
        account = session.get_one(Account, account_id, with_for_update=True)
        phone = wanted or account.phone
        if phone == account.phone and account.phone_verified_at is not None:
            raise Conflict("phone_already_verified", "this phone number is verified", "phone")
        if phone != account.phone and session.scalar(
            select(Account.id).where(Account.phone == phone)
        ):
            raise Conflict("phone_taken", "an account with this phone number exists", "phone")
        pending = session.get(PhoneCode, account_id)
        if pending is not None and pending.created_at + RESEND_AFTER > now:
            wait = max(1, math.ceil((pending.created_at + RESEND_AFTER - now).total_seconds()))
            raise TooManyRequests(
                "phone_code_too_soon",
                f"a code was sent less than a minute ago: wait {wait} seconds",
                "phone",
                details={"retry_after_s": wait},
            )
        uow.commit(phone)
    phone = uow.result
    check_phone_code(ctx, phone, address)  # counted before the SMS goes out, sent or not
    uow = ctx.unit_of_work()
    with uow:
        session = uow.session
        session.execute(delete(PhoneCode).where(PhoneCode.account_id == account_id))
        session.add(
            PhoneCode(
                account_id=account_id,
                phone=phone,
                code_hash=_code_hash(ctx, account_id, phone, code),
                created_at=now,
                expires_at=now + CODE_LIFETIME,
                failed_attempts=0,
            )
        )
        audit.record(
            session,
            at=now,
            actor_account_id=account_id,
            action="phone_code_sent",
            subject_type="account",
            subject_id=account_id,
            change=wanted is not None,
        )
        uow.commit(phone)
    minutes = int(CODE_LIFETIME.total_seconds() // 60)
    try:
        channel = deliver_now(
            ctx, account_id, "phone_code", {"code": code, "minutes": minutes}, phone
        )
    except DeliveryFailed:
        raise ChannelUnavailable(
            "phone_code_not_sent", "the SMS gateway did not take the code: try again later", "phone"
        ) from None
    return CodeSent(mask_phone(phone), now + CODE_LIFETIME, str(channel))


def send_first_code(ctx: ServiceContext, account_id: int, address: str) -> CodeSent | None:
    """The code registration sends by itself (web and API); a refusal (throttled, gateway down)
    leaves the member to ask again (None)."""
    try:
        return send_phone_code(ctx, account_id, address=address)
    except DomainError:
        return None


def confirm_phone_code(ctx: ServiceContext, account_id: int, code: str) -> PhoneStatus:
    """Prove the phone with its code: the account is verified (and its phone changed, for a change
    of phone). A wrong code is counted; after MAX_WRONG_CODES the code is void."""
    now = ctx.clock.now()
    uow: UnitOfWork[DomainError | PhoneStatus] = ctx.unit_of_work()
    try:
        with uow:
            session = uow.session
            pending = session.get(PhoneCode, account_id, with_for_update=True)
            if pending is None:
                raise DomainError(
                    "phone_code_missing", "ask for a code first: none is waiting", "code"
                )
            if pending.expires_at <= now or pending.failed_attempts >= MAX_WRONG_CODES:
                expired = pending.expires_at <= now
                session.delete(pending)
                uow.commit(
                    DomainError(
                        "phone_code_expired" if expired else "phone_code_exhausted",
                        "the code has expired: ask for a new one"
                        if expired
                        else "too many wrong codes: ask for a new one",
                        "code",
                    )
                )
            elif not hmac.compare_digest(
                pending.code_hash, _code_hash(ctx, account_id, pending.phone, code)
            ):
                pending.failed_attempts += 1
                left = MAX_WRONG_CODES - pending.failed_attempts
                uow.commit(
                    DomainError(
                        "phone_code_wrong",
                        f"the code is wrong ({left} tries left)",
                        "code",
                        details={"tries_left": left},
                    )
                )
            else:
                account = session.get_one(Account, account_id, with_for_update=True)
                changed = account.phone != pending.phone
                account.phone = pending.phone
                account.phone_verified_at = now
                session.delete(pending)
                session.flush()
                audit.record(
                    session,
                    at=now,
                    actor_account_id=account_id,
                    action="phone_changed" if changed else "phone_verified",
                    subject_type="account",
                    subject_id=account_id,
                )
                uow.commit(PhoneStatus(account.phone, now))
    except IntegrityError:
        raise Conflict("phone_taken", "an account with this phone number exists", "phone") from None
    outcome = uow.result
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


def mark_phone_verified(ctx: ServiceContext, phone: str, actor_account_id: int | None) -> None:
    """An operator vouches for a phone (a member proved it at the desk; or a demo without SMS)."""
    phone = normalise_phone(phone)
    uow: UnitOfWork[None] = ctx.unit_of_work()
    with uow:
        account = uow.session.scalar(select(Account).where(Account.phone == phone))
        if account is None:
            raise DomainError("account_not_found", "no account has this phone number", "phone")
        account.phone_verified_at = ctx.clock.now()
        audit.record(
            uow.session,
            at=ctx.clock.now(),
            actor_account_id=actor_account_id,
            action="phone_verified_by_staff",
            subject_type="account",
            subject_id=account.id,
        )
        uow.commit(None)
