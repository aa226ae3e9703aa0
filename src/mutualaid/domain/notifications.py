"""Outbound messages: which ones a member cannot opt out of, where each goes, and when a failed one
is tried again.

Pure rules; the outbox (services/notifications) applies them to its rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from mutualaid.domain.errors import DomainError


class Channel(StrEnum):
    """Where a message leaves the plan. LOG: nowhere (a log line), the default with nothing set."""

    SMS = "sms"
    EMAIL = "email"
    APP = "app"
    LOG = "log"
    #: Not sent: a non-essential notice to a member who opted out (it stays in the app).
    NONE = "none"


#: The channels a member may choose.
MEMBER_CHANNELS: tuple[Channel, ...] = (Channel.SMS, Channel.EMAIL, Channel.APP)

#: Notices a member must receive whatever they chose: money owed, cover lost, a decision on their
#: claim, and codes that prove a phone.
ESSENTIAL_KINDS = frozenset(
    {
        "share_payment_failed",
        "membership_removed",
        "plan_cover_ended",
        "plan_wind_down_announced",
        "phone_code",
    }
)
#: Claim states that are decisions (claim_<state> notices).
DECISION_STATES = frozenset({"approved", "rejected", "closed_rejected", "paid", "in_publicity"})

#: Tries before a message is a dead letter (an operator reviews and retries it).
MAX_ATTEMPTS = 6
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=6)

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def is_essential(kind: str) -> bool:
    if kind in ESSENTIAL_KINDS:
        return True
    return kind.startswith("claim_") and kind.removeprefix("claim_") in DECISION_STATES


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed try: 1, 2, 4, … minutes, at most 6 hours."""
    if attempts < 1:
        raise ValueError("attempts counts failed tries, from 1")
    delay: timedelta = FIRST_RETRY * (2 ** (attempts - 1))
    return min(delay, LONGEST_RETRY)


def is_dead(attempts: int) -> bool:
    return attempts >= MAX_ATTEMPTS


@dataclass(frozen=True, slots=True)
class Recipient:
    """What a message needs to know about its reader."""

    phone: str
    email: str | None
    channel: str
    optional: bool
    locale: str


@dataclass(frozen=True, slots=True)
class Route:
    channel: Channel
    #: The address on that channel: a phone, an e-mail address or the account id (app).
    to: str


def route(
    kind: str, recipient: Recipient, account_id: int, configured: frozenset[Channel]
) -> Route:
    """Where a notice goes: nowhere for an opted-out optional one; else the member's channel, the
    phone when they chose e-mail without an address, and the log when the operator set no URL for
    the channel. Phone codes always go by SMS: they prove the phone."""
    if not recipient.optional and not is_essential(kind):
        return Route(Channel.NONE, "")
    wanted = Channel.SMS if kind == "phone_code" else _channel_of(recipient.channel)
    if wanted is Channel.EMAIL and not recipient.email:
        wanted = Channel.SMS
    if wanted not in configured:
        return Route(Channel.LOG, "")
    to = {
        Channel.SMS: recipient.phone,
        Channel.EMAIL: recipient.email or "",
        Channel.APP: str(account_id),
    }[wanted]
    return Route(wanted, to)


def _channel_of(value: str) -> Channel:
    try:
        channel = Channel(value)
    except ValueError:
        return Channel.SMS
    return channel if channel in MEMBER_CHANNELS else Channel.SMS


def check_channel(value: str, field: str = "notify_channel") -> Channel:
    try:
        channel = Channel(value)
    except ValueError:
        channel = Channel.NONE
    if channel not in MEMBER_CHANNELS:
        raise DomainError(
            "invalid_channel",
            "messages go by sms, email or app",
            field,
            details={"allowed": [str(c) for c in MEMBER_CHANNELS]},
        )
    return channel


def normalise_email(raw: str, field: str = "email") -> str:
    email = raw.strip()
    if len(email) > 254 or not _EMAIL.match(email):
        raise DomainError("invalid_email", "this is not an e-mail address", field)
    return email
