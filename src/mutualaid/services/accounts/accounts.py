"""Registering, logging in and out, and turning a bearer token into an actor."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mutualaid.db.models import Account, ApiToken
from mutualaid.domain.accounts import Role, check_password_strength, normalise_phone
from mutualaid.domain.errors import Conflict, Unauthenticated
from mutualaid.services import audit
from mutualaid.services.accounts.invitations import ImportInvitation, OwnershipProof, ProofRefused
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import UnitOfWork
from mutualaid.services.notifications.outbox import notify

IMPORT_INVITATION = ImportInvitation()

_DUMMY_PASSWORD = "not-a-real-password"
_dummy_hashes: dict[str, str] = {}


def _dummy_hash(hasher: PasswordHasher) -> str:
    # Verifying against this keeps a login for an unknown phone as slow as one with a wrong
    # password, so timing does not reveal which phone numbers have accounts.
    key = repr((hasher.time_cost, hasher.memory_cost, hasher.parallelism))
    if key not in _dummy_hashes:
        _dummy_hashes[key] = hasher.hash(_DUMMY_PASSWORD)
    return _dummy_hashes[key]


@dataclass(frozen=True, slots=True)
class Actor:
    account_id: int
    role: Role

    @property
    def recorded_id(self) -> int | None:
        """The account id to record as author (None for the system actor, which has no row)."""
        return self.account_id or None


@dataclass(frozen=True, slots=True)
class BearerToken:
    """An API caller whose token is not looked up yet: the hottest write (a join) checks it in
    its own first read instead of a separate round trip. Anything else calls `authenticate`."""

    token: str

    @property
    def token_hash(self) -> str:
        return _token_hash(self.token)


SYSTEM_ACTOR = Actor(account_id=0, role=Role.OPERATOR)
"""Whoever runs the CLI on the server: trusted like an operator, audited as the system."""


@dataclass(frozen=True, slots=True)
class AccountView:
    id: int
    phone: str
    role: Role
    display_name: str | None
    locale: str
    #: Whether the owner proved the phone with an SMS code (services/accounts/phone_codes.py).
    phone_verified: bool = False


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    account: AccountView
    expires_at: datetime


def _view(account: Account) -> AccountView:
    return AccountView(
        id=account.id,
        phone=account.phone,
        role=Role(account.role),
        display_name=account.display_name,
        locale=account.locale,
        phone_verified=account.phone_verified_at is not None,
    )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def register_account(
    ctx: ServiceContext,
    phone: str,
    password: str,
    *,
    display_name: str | None = None,
    locale: str = "zh_CN",
    role: Role = Role.MEMBER,
    actor_account_id: int | None = None,
    invitation: str | None = None,
    proof: OwnershipProof = IMPORT_INVITATION,
) -> AccountView:
    """A new account, or the binding of an imported one: that needs `invitation`, the proof of
    owning the phone (security issue #13, finding 1)."""
    phone = normalise_phone(phone)
    check_password_strength(password)
    password_hash = ctx.password_hasher.hash(password)
    claimed_id: int | None = None
    uow: UnitOfWork[AccountView] = ctx.unit_of_work()
    try:
        with uow:
            session = uow.session
            existing = session.scalar(select(Account).where(Account.phone == phone))
            if existing is not None and existing.password_hash is None:
                # An imported member claims their account by setting a password, with proof.
                claimed_id = existing.id
                proof.verify(session, claimed_id, invitation, ctx.clock.now())
                existing.password_hash = password_hash
                existing.display_name = existing.display_name or display_name
                account = existing
            elif existing is not None:
                raise Conflict("phone_taken", "an account with this phone number exists", "phone")
            else:
                account = Account(
                    phone=phone,
                    password_hash=password_hash,
                    role=role,
                    display_name=display_name,
                    locale=locale,
                    created_at=ctx.clock.now(),
                )
                session.add(account)
                session.flush()
            if role == Role.MEMBER:
                notify(
                    session,
                    at=ctx.clock.now(),
                    account_id=account.id,
                    kind="account_registered",
                    subject_type="account",
                    subject_id=account.id,
                )
            audit.record(
                session,
                at=ctx.clock.now(),
                actor_account_id=actor_account_id or account.id,
                action="account_registered",
                subject_type="account",
                subject_id=account.id,
                role=str(role),
            )
            uow.commit(_view(account))
    except ProofRefused as refused:
        if refused.counts and claimed_id is not None:
            proof.count_failure(ctx, claimed_id)
        raise
    except IntegrityError:
        raise Conflict("phone_taken", "an account with this phone number exists", "phone") from None
    return uow.result


def log_in(ctx: ServiceContext, phone: str, password: str) -> IssuedToken:
    refusal = Unauthenticated(
        "bad_credentials", "the phone number or password is wrong", "password"
    )
    try:
        phone = normalise_phone(phone)
    except Exception:
        raise refusal from None
    hasher = ctx.password_hasher
    uow: UnitOfWork[IssuedToken] = ctx.unit_of_work()
    with uow:
        session = uow.session
        account = session.scalar(select(Account).where(Account.phone == phone))
        try:
            hasher.verify(
                account.password_hash if account and account.password_hash else _dummy_hash(hasher),
                password,
            )
        except (VerificationError, InvalidHashError):
            raise refusal from None
        if account is None or account.password_hash is None:
            raise refusal
        if hasher.check_needs_rehash(account.password_hash):
            account.password_hash = hasher.hash(password)
        uow.commit(_issue_token(ctx, session, account))
    return uow.result


def _issue_token(ctx: ServiceContext, session: Session, account: Account) -> IssuedToken:
    token = secrets.token_urlsafe(32)
    now = ctx.clock.now()
    expires_at = now + timedelta(hours=ctx.token_ttl_hours)
    session.add(
        ApiToken(
            token_hash=_token_hash(token),
            account_id=account.id,
            created_at=now,
            expires_at=expires_at,
        )
    )
    audit.record(
        session,
        at=now,
        actor_account_id=account.id,
        action="logged_in",
        subject_type="account",
        subject_id=account.id,
    )
    return IssuedToken(token=token, account=_view(account), expires_at=expires_at)


def issue_token(ctx: ServiceContext, account_id: int) -> IssuedToken:
    """A session for an account whose sign-in another step completed (a second factor)."""
    uow: UnitOfWork[IssuedToken] = ctx.unit_of_work()
    with uow:
        account = uow.session.get(Account, account_id)
        if account is None:
            raise Unauthenticated("invalid_token", "the account no longer exists")
        uow.commit(_issue_token(ctx, uow.session, account))
    return uow.result


def log_out(ctx: ServiceContext, token: str) -> None:
    uow: UnitOfWork[None] = ctx.unit_of_work()
    with uow:
        uow.session.execute(delete(ApiToken).where(ApiToken.token_hash == _token_hash(token)))
        uow.commit(None)


_TOKEN_OWNER = (
    select(Account.id, Account.role, ApiToken.expires_at)
    .join(ApiToken, ApiToken.account_id == Account.id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


def authenticate(ctx: ServiceContext, token: str) -> Actor:
    # Every API call starts here: one prebuilt statement, no ORM session.
    with ctx.autocommit() as connection:
        return actor_of_token(connection, BearerToken(token), ctx.clock.now())


def actor_of_token(connection: Connection, token: BearerToken, now: datetime) -> Actor:
    """The owner of a bearer token, read on the caller's connection; refused when unknown or
    expired at `now`."""
    row = connection.execute(_TOKEN_OWNER, {"token_hash": token.token_hash}).first()
    if row is None or row.expires_at <= now:
        raise Unauthenticated("invalid_token", "log in again: the token is unknown or expired")
    return Actor(account_id=row.id, role=Role(row.role))


def get_account(ctx: ServiceContext, account_id: int) -> AccountView:
    with ctx.reading() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise Unauthenticated("invalid_token", "the account no longer exists")
        return _view(account)
