"""Proof of owning an imported account before it is bound (security issue #13, finding 1).

A bulk import creates accounts without a password. Whoever registers such a phone number first
used to get the account, with the member's name, ID number and cover. Now binding one needs proof:
today an invitation code created for the import and handed to the operator (never logged); an SMS
code can be another `OwnershipProof` once there is an SMS channel.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mutualaid.db.models import Account, AccountInvitation
from mutualaid.domain.errors import Forbidden
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import UnitOfWork

INVITATION_DAYS = 30
#: Wrong codes before an invitation is void (the operator issues a new one).
MAX_FAILED_ATTEMPTS = 5


class ProofRefused(Forbidden):
    """The proof is missing or wrong; a wrong code is counted after the refused transaction."""

    def __init__(self, code: str, message: str, *, counts: bool = False) -> None:
        super().__init__(code, message, "invitation")
        self.counts = counts


class OwnershipProof(Protocol):
    """Something only the phone's owner can show: an import invitation, later an SMS code."""

    def verify(self, session: Session, account_id: int, code: str | None, now: datetime) -> None:
        """Return when `code` proves ownership (using it up); raise ProofRefused otherwise."""

    def count_failure(self, ctx: ServiceContext, account_id: int) -> None:
        """Record a wrong code in its own transaction (the refused one is rolled back)."""


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


class ImportInvitation:
    def verify(self, session: Session, account_id: int, code: str | None, now: datetime) -> None:
        invitation = session.get(AccountInvitation, account_id, with_for_update=True)
        if not code or not code.strip():
            raise ProofRefused(
                "invitation_required",
                "this phone number belongs to an imported member: enter the invitation code "
                "your plan operator gave you",
            )
        if invitation is None or not hmac.compare_digest(invitation.code_hash, _code_hash(code)):
            raise ProofRefused(
                "invitation_invalid", "the invitation code is wrong", counts=invitation is not None
            )
        if invitation.failed_attempts >= MAX_FAILED_ATTEMPTS:
            raise ProofRefused(
                "invitation_locked",
                "this invitation was tried too often: ask your plan operator for a new one",
            )
        if invitation.expires_at <= now:
            raise ProofRefused(
                "invitation_expired",
                "the invitation code has expired: ask your plan operator for a new one",
            )
        session.delete(invitation)

    def count_failure(self, ctx: ServiceContext, account_id: int) -> None:
        uow: UnitOfWork[None] = ctx.unit_of_work()
        with uow:
            uow.session.execute(
                update(AccountInvitation)
                .where(AccountInvitation.account_id == account_id)
                .values(failed_attempts=AccountInvitation.failed_attempts + 1)
            )
            uow.commit(None)


def issue_invitations(ctx: ServiceContext, *, renew: bool = False) -> list[tuple[str, str]]:
    """A fresh code for every passwordless account without a live invitation: (phone, code) pairs
    for the operator to hand out. Only the hash is kept. `renew` replaces existing ones too."""
    now = ctx.clock.now()
    issued: list[tuple[str, str]] = []
    uow: UnitOfWork[list[tuple[str, str]]] = ctx.unit_of_work()
    with uow:
        session = uow.session
        query = (
            select(Account.id, Account.phone, AccountInvitation)
            .outerjoin(AccountInvitation, AccountInvitation.account_id == Account.id)
            .where(Account.password_hash.is_(None))
            .order_by(Account.id)
        )
        for account_id, phone, invitation in session.execute(query).all():
            if invitation is not None and not renew and invitation.expires_at > now:
                continue
            code = secrets.token_urlsafe(12)
            if invitation is not None:
                session.delete(invitation)
                session.flush()
            session.add(
                AccountInvitation(
                    account_id=account_id,
                    code_hash=_code_hash(code),
                    created_at=now,
                    expires_at=now + timedelta(days=INVITATION_DAYS),
                    failed_attempts=0,
                )
            )
            issued.append((phone, code))
        uow.commit(issued)
    return uow.result
