"""A member's choices for messages: language, channel, e-mail address, optional messages."""

from __future__ import annotations

from dataclasses import dataclass

from mutualaid.db.models import Account
from mutualaid.domain.errors import DomainError
from mutualaid.domain.notifications import Channel, check_channel, normalise_email
from mutualaid.services import audit
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import UnitOfWork

LOCALES = ("zh_CN", "en")


@dataclass(frozen=True, slots=True)
class MessagePreferences:
    locale: str
    channel: str
    email: str | None
    #: False: only essential messages (claim decisions, failed debits, codes) are sent.
    optional: bool
    phone_verified: bool


def _view(account: Account) -> MessagePreferences:
    return MessagePreferences(
        account.locale,
        account.notify_channel,
        account.email,
        account.notify_optional,
        account.phone_verified_at is not None,
    )


def get_preferences(ctx: ServiceContext, account_id: int) -> MessagePreferences:
    with ctx.reading() as session:
        return _view(session.get_one(Account, account_id))


def set_preferences(
    ctx: ServiceContext,
    account_id: int,
    *,
    locale: str | None = None,
    channel: str | None = None,
    email: str | None = None,
    optional: bool | None = None,
) -> MessagePreferences:
    """Change what is given (None: keep); an empty e-mail address removes it. Choosing e-mail
    needs an address."""
    if locale is not None and locale not in LOCALES:
        raise DomainError(
            "invalid_locale", "messages are in zh_CN or en", "locale", details={"allowed": LOCALES}
        )
    chosen = check_channel(channel) if channel is not None else None
    address = (normalise_email(email) if email.strip() else "") if email is not None else None
    uow: UnitOfWork[MessagePreferences] = ctx.unit_of_work()
    with uow:
        account = uow.session.get_one(Account, account_id, with_for_update=True)
        if locale is not None:
            account.locale = locale
        if address is not None:
            account.email = address or None
        if chosen is not None:
            account.notify_channel = str(chosen)
        if optional is not None:
            account.notify_optional = optional
        if account.notify_channel == Channel.EMAIL and not account.email:
            raise DomainError(
                "email_required", "give an e-mail address to receive messages by e-mail", "email"
            )
        audit.record(
            uow.session,
            at=ctx.clock.now(),
            actor_account_id=account_id,
            action="message_preferences_changed",
            subject_type="account",
            subject_id=account_id,
            locale=account.locale,
            channel=account.notify_channel,
            optional=account.notify_optional,
        )
        uow.commit(_view(account))
    return uow.result
