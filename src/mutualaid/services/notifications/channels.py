"""Where outbound messages go: Apprise notification URLs per channel, or the log.

An operator sets one Apprise URL per channel (`MUTUALAID_NOTIFY_EMAIL_URL`, `…_SMS_URL`,
`…_WEBHOOK_URL` for the "app" channel); `{to}` in it is replaced by the recipient's address (an e-mail address, a phone
number, or the account id for the operator's app webhook), e.g.

    MUTUALAID_NOTIFY_EMAIL_URL='mailtos://user:pass@smtp.example.org/{to}?from=plan@example.org'
    MUTUALAID_NOTIFY_SMS_URL='twilio://SID:TOKEN@+8610000000/{to}'
    MUTUALAID_NOTIFY_WEBHOOK_URL='jsons://push.example.org/notify?:to={to}'

With nothing set every message goes to the log channel, which logs the notice's kind and id but
never its text or address (a phone code must never reach a log line).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

import structlog

from mutualaid.domain.notifications import Channel
from mutualaid.services.context import MessageChannels

log = structlog.get_logger()

# Apprise logs each delivery with its target (an address or phone number): keep only its errors
# without targets out of our logs, as every other personal datum is.
logging.getLogger("apprise").setLevel(logging.CRITICAL)


class DeliveryFailed(Exception):
    """The channel did not take the message; the outbox tries again later."""


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    notification_id: int | None
    account_id: int
    kind: str
    channel: Channel
    #: The recipient's address on the channel (never logged).
    to: str
    locale: str
    subject: str
    body: str

    def __repr__(self) -> str:  # the address and text never reach a log line or a traceback
        return f"OutboundMessage(id={self.notification_id}, kind={self.kind!r}, {self.channel})"


class Sender(Protocol):
    def send(self, message: OutboundMessage) -> None:
        """Deliver, or raise DeliveryFailed."""


class LogSender:
    """The default: a log line with the kind and ids only."""

    def send(self, message: OutboundMessage) -> None:
        log.info(
            "notification",
            notification_id=message.notification_id,
            account_id=message.account_id,
            kind=message.kind,
        )


class AppriseSender:
    """One Apprise URL template; `{to}` becomes the recipient's (URL-quoted) address."""

    def __init__(self, url: str) -> None:
        import apprise

        self.url = url
        probe = apprise.Apprise()
        if not probe.add(url.replace("{to}", "probe")):
            raise ValueError("not an Apprise notification URL (see https://appriseit.com)")

    def send(self, message: OutboundMessage) -> None:
        import apprise

        target = apprise.Apprise()
        if not target.add(self.url.replace("{to}", quote(message.to, safe=""))):
            raise DeliveryFailed("the address does not fit the channel's URL")
        if not target.notify(body=message.body, title=message.subject):
            raise DeliveryFailed(f"the {message.channel} channel refused the message")

    def __repr__(self) -> str:  # URLs hold gateway credentials
        return "AppriseSender(…)"


class Outbound:
    """The senders per channel; the log channel is always there."""

    def __init__(self, senders: Mapping[Channel, Sender] | None = None) -> None:
        self.senders: dict[Channel, Sender] = {Channel.LOG: LogSender(), **(senders or {})}

    @classmethod
    def from_urls(cls, urls: Mapping[Channel, str | None]) -> Outbound:
        return cls({channel: AppriseSender(url) for channel, url in urls.items() if url})

    @property
    def configured(self) -> frozenset[Channel]:
        return frozenset(self.senders)

    def send(self, message: OutboundMessage) -> None:
        self.senders[message.channel].send(message)


_outbounds: dict[MessageChannels, Outbound] = {}


def outbound_for(channels: MessageChannels) -> Outbound:
    """The senders for a context's configuration (built once per process)."""
    outbound = _outbounds.get(channels)
    if outbound is None:
        outbound = _outbounds[channels] = Outbound.from_urls(
            {
                Channel.EMAIL: channels.email_url,
                Channel.SMS: channels.sms_url,
                Channel.APP: channels.webhook_url,
            }
        )
    return outbound
