"""Staff second factors: TOTP enrolment, sign-in with password + code, recovery codes, reset.

Staff never hold a session opened by a password alone: the password step yields a short signed
ticket (`PendingSignIn`) that only the code step (or enrolment) turns into a bearer token. So a
staff member without a factor cannot open evidence, decide claims or release payouts anywhere,
web or API, until they enrol."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from dataclasses import dataclass

import pyotp
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mutualaid.db.models import Account, ApiToken, StaffSecondFactor
from mutualaid.domain.accounts import Role, normalise_phone
from mutualaid.domain.errors import DomainError, NotFound, Unauthenticated
from mutualaid.domain.second_factors import (
    DRIFT_STEPS,
    ISSUER,
    is_totp_shaped,
    needs_second_factor,
    new_recovery_codes,
    normalise_code,
    recovery_hash,
    time_step,
)
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import IssuedToken, issue_token, log_out
from mutualaid.services.accounts.login_throttle import (
    check_login_allowed,
    record_failed_login,
    throttled_log_in,
)
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import UnitOfWork

SECRET_PURPOSE = b"mutualaid staff totp secret v1"
TICKET_TTL_S = 10 * 60


class SecondFactorRequired(Unauthenticated):
    """The password was right; the account is staff and must now give a code (or enrol)."""

    def __init__(self, code: str, message: str, ticket: str) -> None:
        super().__init__(code, message, "code", details={"ticket": ticket})
        self.ticket = ticket


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret: str
    uri: str


@dataclass(frozen=True, slots=True)
class Confirmed:
    issued: IssuedToken
    recovery_codes: list[str]


# --- tickets: proof of the password step, bound to the account and expiring ---------------------


def _ticket_key(ctx: ServiceContext) -> bytes:
    return bytes.fromhex(ctx.protector.identity_hash("mutualaid second factor ticket key v1"))


def _ticket(ctx: ServiceContext, account_id: int, phone: str) -> str:
    expires = int(ctx.clock.now().timestamp()) + TICKET_TTL_S
    body = f"{account_id}.{expires}"
    mac = hmac.new(_ticket_key(ctx), f"{body}.{phone}".encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def ticket_for(ctx: ServiceContext, account_id: int) -> str:
    """A ticket for an account whose first factor another step proved (an OIDC sign-in)."""
    with ctx.reading() as session:
        phone = session.scalar(select(Account.phone).where(Account.id == account_id))
    if phone is None:
        raise Unauthenticated("invalid_ticket", "sign in again: this step has expired", "code")
    return _ticket(ctx, account_id, phone)


def account_of_ticket(ctx: ServiceContext, ticket: str) -> tuple[int, str]:
    """The (account id, phone) a valid ticket names; refused when forged or expired."""
    refusal = Unauthenticated("invalid_ticket", "sign in again: this step has expired", "code")
    try:
        account_id_text, expires_text, mac = ticket.split(".")
        account_id, expires = int(account_id_text), int(expires_text)
    except ValueError:
        raise refusal from None
    if expires < ctx.clock.now().timestamp():
        raise refusal
    with ctx.reading() as session:
        phone = session.scalar(select(Account.phone).where(Account.id == account_id))
    if phone is None:
        raise refusal
    body = f"{account_id}.{expires}.{phone}".encode()
    if not hmac.compare_digest(mac, hmac.new(_ticket_key(ctx), body, hashlib.sha256).hexdigest()):
        raise refusal
    return account_id, phone


# --- secrets ------------------------------------------------------------------------------------


def _encrypt(ctx: ServiceContext, secret: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + ctx.protector.aead_for(SECRET_PURPOSE).encrypt(nonce, secret.encode(), None)


def _decrypt(ctx: ServiceContext, ciphertext: bytes, key_version: int) -> str:
    aead = ctx.protector.aead_for(SECRET_PURPOSE, key_version)
    return aead.decrypt(ciphertext[:12], ciphertext[12:], None).decode()


def _matching_step(ctx: ServiceContext, secret: str, code: str) -> int | None:
    totp = pyotp.TOTP(secret)
    now = time_step(ctx.clock.now())
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def has_factor(ctx: ServiceContext, account_id: int) -> bool:
    with ctx.reading() as session:
        row = session.get(StaffSecondFactor, account_id)
        return row is not None and row.confirmed_at is not None


# --- enrolment ----------------------------------------------------------------------------------


def start_enrolment(ctx: ServiceContext, ticket: str, *, secret: str | None = None) -> Enrolment:
    """A new secret for an account without a confirmed factor (kept until confirmed)."""
    account_id, phone = account_of_ticket(ctx, ticket)
    uow: UnitOfWork[str] = ctx.unit_of_work()
    with uow:
        session = uow.session
        row = session.get(StaffSecondFactor, account_id)
        if row is not None and row.confirmed_at is not None:
            raise DomainError("already_enrolled", "this account already has a second factor")
        if row is not None and secret is None:
            secret = _decrypt(
                ctx, row.secret_ciphertext, row.key_version
            )  # reloading the page keeps the secret
        secret = secret or pyotp.random_base32()
        if row is None:
            row = StaffSecondFactor(account_id=account_id, recovery_hashes=[])
            session.add(row)
        row.secret_ciphertext = _encrypt(ctx, secret)
        row.key_version = ctx.protector.current_version
        uow.commit(secret)
    uri = pyotp.TOTP(uow.result).provisioning_uri(name=phone, issuer_name=ISSUER)
    return Enrolment(secret=uow.result, uri=uri)


def confirm_enrolment(ctx: ServiceContext, ticket: str, code: str, address: str) -> Confirmed:
    """The first code proves the authenticator holds the secret: issue the session and the
    recovery codes (shown once; only their hashes are kept)."""
    account_id, phone = account_of_ticket(ctx, ticket)
    check_login_allowed(ctx, phone, address)
    code = normalise_code(code)
    codes = new_recovery_codes()
    uow: UnitOfWork[bool] = ctx.unit_of_work()
    with uow:
        session = uow.session
        row = session.get(StaffSecondFactor, account_id)
        if row is None or row.confirmed_at is not None:
            raise DomainError("not_enrolling", "start the set-up again", "code")
        step = _matching_step(ctx, _decrypt(ctx, row.secret_ciphertext, row.key_version), code)
        if step is not None:
            _confirm(ctx, session, row, step, codes, actor_account_id=account_id)
        uow.commit(step is None)
    if uow.result:  # the code was wrong
        record_failed_login(ctx, phone, address)
        raise Unauthenticated("bad_code", "the code is wrong: check the time on your phone", "code")
    return Confirmed(issued=issue_token(ctx, account_id), recovery_codes=codes)


# --- sign-in ------------------------------------------------------------------------------------


def _spend_code(ctx: ServiceContext, account_id: int, code: str) -> str | None:
    """Accept a TOTP code (not replayed) or spend a recovery code; the refusal code if neither."""
    uow: UnitOfWork[None] = ctx.unit_of_work()
    with uow:
        session = uow.session
        row = session.scalar(
            select(StaffSecondFactor)
            .where(StaffSecondFactor.account_id == account_id)
            .with_for_update()
        )
        if row is None or row.confirmed_at is None:
            return "second_factor_not_enrolled"
        if is_totp_shaped(code):
            step = _matching_step(ctx, _decrypt(ctx, row.secret_ciphertext, row.key_version), code)
            if step is None:
                return "bad_code"
            if row.last_step is not None and step <= row.last_step:
                return "code_replayed"
            row.last_step = step
            uow.commit(None)
            return None
        hashed = recovery_hash(code)
        if hashed not in row.recovery_hashes:
            return "bad_code"
        row.recovery_hashes = [h for h in row.recovery_hashes if h != hashed]
        audit.record(
            session,
            at=ctx.clock.now(),
            actor_account_id=account_id,
            action="recovery_code_used",
            subject_type="account",
            subject_id=account_id,
            left=len(row.recovery_hashes),
        )
        uow.commit(None)
    return None


def sign_in(
    ctx: ServiceContext, phone: str, password: str, code: str | None, address: str
) -> IssuedToken:
    """Password, then for staff a code: the one entry point for the web form and the API.

    A staff password alone raises SecondFactorRequired with a ticket for the next step."""
    issued = throttled_log_in(ctx, phone, password, address)
    if not needs_second_factor(issued.account.role):
        return issued
    # The password was right, but a staff session needs the code too: this token never leaves.
    log_out(ctx, issued.token)
    ticket = _ticket(ctx, issued.account.id, issued.account.phone)
    if not has_factor(ctx, issued.account.id):
        raise SecondFactorRequired(
            "second_factor_enrolment_required",
            "staff accounts need a second factor: set up an authenticator app first",
            ticket,
        )
    if not code:
        raise SecondFactorRequired(
            "second_factor_required", "enter the code from your authenticator app", ticket
        )
    return verify_code(ctx, ticket, code, address)


def verify_code(ctx: ServiceContext, ticket: str, code: str, address: str) -> IssuedToken:
    account_id, phone = account_of_ticket(ctx, ticket)
    check_login_allowed(ctx, phone, address)
    refusal = _spend_code(ctx, account_id, normalise_code(code))
    if refusal is not None:
        record_failed_login(ctx, phone, address)
        messages = dict(
            (
                ("bad_code", "the code is wrong: check the time on your phone"),
                ("code_replayed", "this code was used already: wait for the next one"),
                ("second_factor_not_enrolled", "set up an authenticator app first"),
            )
        )
        raise Unauthenticated(refusal, messages[refusal], "code")
    return issue_token(ctx, account_id)


# --- operators ----------------------------------------------------------------------------------


def reset_factor(ctx: ServiceContext, phone: str, actor_account_id: int | None) -> int:
    """Remove a staff member's factor (lost phone): they enrol again at their next sign-in.
    Their open sessions end too. Audited."""
    phone = normalise_phone(phone)
    uow: UnitOfWork[int] = ctx.unit_of_work()
    with uow:
        session = uow.session
        account = session.scalar(select(Account).where(Account.phone == phone))
        if account is None:
            raise NotFound("account_not_found", "no account has this phone number", "phone")
        if not needs_second_factor(Role(account.role)):
            raise DomainError("not_staff", "members have no second factor", "phone")
        row = session.get(StaffSecondFactor, account.id)
        if row is not None:
            session.delete(row)
        session.execute(delete(ApiToken).where(ApiToken.account_id == account.id))
        audit.record(
            session,
            at=ctx.clock.now(),
            actor_account_id=actor_account_id,
            action="second_factor_reset",
            subject_type="account",
            subject_id=account.id,
        )
        uow.commit(account.id)
    return uow.result


def enrol_with_secret(ctx: ServiceContext, account_id: int, secret: str) -> list[str]:
    """Enrol a known secret at once (test and CLI-provisioned staff): its recovery codes."""
    codes = new_recovery_codes()
    uow: UnitOfWork[None] = ctx.unit_of_work()
    with uow:
        session = uow.session
        row = session.get(StaffSecondFactor, account_id)
        if row is None:
            row = StaffSecondFactor(account_id=account_id, recovery_hashes=[])
            session.add(row)
        row.secret_ciphertext = _encrypt(ctx, secret)
        row.key_version = ctx.protector.current_version
        _confirm(ctx, session, row, None, codes, actor_account_id=None)
        uow.commit(None)
    return codes


def current_code(secret: str, at_epoch_s: float | None = None) -> str:
    """The code an authenticator shows now (tests, and the demo's printed instructions)."""
    return pyotp.TOTP(secret).at(at_epoch_s if at_epoch_s is not None else time.time())


def _confirm(
    ctx: ServiceContext,
    session: Session,
    row: StaffSecondFactor,
    step: int | None,
    codes: list[str],
    *,
    actor_account_id: int | None,
) -> None:
    """The factor is in use from now, with these recovery codes (hashed), and the audit says so."""
    row.confirmed_at = ctx.clock.now()
    row.last_step = step
    row.recovery_hashes = [recovery_hash(c) for c in codes]
    audit.record(
        session,
        at=ctx.clock.now(),
        actor_account_id=actor_account_id,
        action="second_factor_enrolled",
        subject_type="account",
        subject_id=row.account_id,
    )
