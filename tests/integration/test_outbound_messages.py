"""Messages leave through Apprise to a real SMTP server on localhost, in the member's language."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from tests.factories import account
from tests.mailboxes import Mailbox, free_port
from tests.refusals import refused

from mutualaid.clock import FixedClock
from mutualaid.db.models import Notification
from mutualaid.domain.notifications import MAX_ATTEMPTS, Channel, retry_delay
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import MessageChannels, ServiceContext
from mutualaid.services.notifications import (
    Outbound,
    OutboundMessage,
    dispatch_notifications,
    list_dead_letters,
    notify,
    retry_dead_letters,
    set_preferences,
)

SITE = "https://plan.example.org"


def by_mail(ctx: ServiceContext, smtp: Mailbox) -> None:
    ctx.messages = MessageChannels(
        email_url=smtp.url(), sms_url=smtp.url("sms-{to}@sms.example.org"), public_url=SITE
    )


def member(ctx: ServiceContext, phone: str | None = None) -> Actor:
    """A member whose welcome message is already out (to the log)."""
    actor = account(ctx, phone=phone)
    dispatch_notifications(ctx, Outbound())
    return actor


def reading_email(ctx: ServiceContext, locale: str, address: str) -> Actor:
    actor = member(ctx)
    set_preferences(ctx, actor.account_id, locale=locale, channel="email", email=address)
    return actor


def tell(ctx: ServiceContext, actor: Actor, kind: str, **payload: object) -> None:
    with ctx.sessions.begin() as session:
        notify(
            session,
            at=ctx.clock.now(),
            account_id=actor.account_id,
            kind=kind,
            subject_type="period",
            subject_id=None,
            **payload,
        )


def failed_debit(ctx: ServiceContext, actor: Actor) -> None:
    tell(
        ctx,
        actor,
        "share_payment_failed",
        period="2026-03-07",
        amount_fen=12345,
        retry_until="2026-03-21",
    )


def test_a_failed_debit_is_mailed_with_the_amount_and_a_link_to_pay_in_each_language(
    ctx: ServiceContext, smtp: Mailbox
) -> None:
    by_mail(ctx, smtp)
    english = reading_email(ctx, "en", "li.wei@example.org")
    chinese = reading_email(ctx, "zh_CN", "zhang.hua@example.org")
    failed_debit(ctx, english)
    failed_debit(ctx, chinese)
    assert dispatch_notifications(ctx).sent == 2
    [mail] = smtp.to("li.wei@example.org")
    assert mail.subject == "Your share of ¥123.45 could not be debited"
    assert "Please pay ¥123.45 before 2026-03-21" in mail.body
    assert f"Pay now: {SITE}/me/payments" in mail.body
    [mail] = smtp.to("zhang.hua@example.org")
    assert mail.subject == "您的分摊金额 ¥123.45 扣款失败"
    assert f"立即支付:{SITE}/me/payments" in mail.body
    assert dispatch_notifications(ctx).sent == 0
    assert len(smtp.messages) == 2


def test_sms_goes_to_the_phone_when_no_email_is_chosen(ctx: ServiceContext, smtp: Mailbox) -> None:
    by_mail(ctx, smtp)
    tell(ctx, member(ctx, "13912345678"), "claim_approved", ref="C-2026-1", note=None)
    dispatch_notifications(ctx)
    [sms] = smtp.to("sms-13912345678@sms.example.org")
    assert sms.subject == "您的申请 C-2026-1:已通过"
    assert f"{SITE}/claims/C-2026-1" in sms.body


def test_an_opted_out_member_gets_only_essential_messages(
    ctx: ServiceContext, smtp: Mailbox
) -> None:
    by_mail(ctx, smtp)
    actor = reading_email(ctx, "en", "quiet@example.org")
    set_preferences(ctx, actor.account_id, optional=False)
    tell(ctx, actor, "jury_vote_open", claim_ref="C-1", closes_at="2026-03-02T02:00:00+00:00")
    failed_debit(ctx, actor)
    result = dispatch_notifications(ctx)
    assert (result.sent, result.skipped) == (1, 1)
    [mail] = smtp.to("quiet@example.org")
    assert "¥123.45" in mail.subject
    with ctx.reading() as session:  # the jury notice stays in the app, marked as not sent out
        channels = dict(session.execute(select(Notification.kind, Notification.channel)).all())
    assert channels == {
        "account_registered": "log",
        "jury_vote_open": "none",
        "share_payment_failed": "email",
    }


def test_failures_back_off_then_become_dead_letters_that_an_operator_retries(
    ctx: ServiceContext, clock: FixedClock, smtp: Mailbox
) -> None:
    by_mail(ctx, smtp)
    working = ctx.messages
    ctx.messages = MessageChannels(email_url=Mailbox(port=free_port()).url(), public_url=SITE)
    failed_debit(ctx, reading_email(ctx, "en", "unlucky@example.org"))
    for attempt in range(1, MAX_ATTEMPTS + 1):
        result = dispatch_notifications(ctx)
        assert result.failed == 1
        assert dispatch_notifications(ctx).failed == 0  # not due again before its back-off
        clock.advance(retry_delay(attempt))
    assert result.dead == 1
    [dead] = list_dead_letters(ctx)
    assert (dead.kind, dead.attempts) == ("share_payment_failed", MAX_ATTEMPTS)
    assert dead.last_error == "the email channel refused the message"
    clock.advance(timedelta(days=1))
    assert dispatch_notifications(ctx).failed == 0  # dead letters are not tried again by themselves
    ctx.messages = working
    assert retry_dead_letters(ctx, None, [dead.id]) == 1
    assert dispatch_notifications(ctx).sent == 1
    assert len(smtp.to("unlucky@example.org")) == 1
    assert list_dead_letters(ctx) == []


def test_a_dead_letter_retry_repeated_with_its_key_retries_once(ctx: ServiceContext) -> None:
    operator, actor = account(ctx), member(ctx)
    failed_debit(ctx, actor)
    with ctx.sessions.begin() as session:  # its tries spent
        session.execute(
            update(Notification)
            .where(Notification.sent_at.is_(None))
            .values(attempts=MAX_ATTEMPTS, dead_at=ctx.clock.now())
        )
    [dead] = list_dead_letters(ctx)

    first = retry_dead_letters(ctx, operator.account_id, None, idempotency_key="retry-1")
    with ctx.sessions.begin() as session:  # it dies again before the operator's retry arrives
        session.execute(
            update(Notification).values(dead_at=ctx.clock.now()).where(Notification.id == dead.id)
        )
    again = retry_dead_letters(ctx, operator.account_id, None, idempotency_key="retry-1")

    assert (first, again) == (1, 1)
    assert [d.id for d in list_dead_letters(ctx)] == [dead.id]  # the retry put nothing back
    with refused("idempotency_key_reused"):
        retry_dead_letters(ctx, operator.account_id, [dead.id], idempotency_key="retry-1")


def test_choosing_email_needs_an_address(ctx: ServiceContext) -> None:
    actor = member(ctx)
    with refused("email_required"):
        set_preferences(ctx, actor.account_id, channel="email")
    with refused("invalid_email"):
        set_preferences(ctx, actor.account_id, email="not an address")
    with refused("invalid_channel"):
        set_preferences(ctx, actor.account_id, channel="fax")
    with refused("invalid_locale"):
        set_preferences(ctx, actor.account_id, locale="fr")


class GatedSender:
    """Holds the first message until released, as a slow gateway would."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.sent: list[int | None] = []

    def send(self, message: OutboundMessage) -> None:
        self.entered.set()
        assert self.release.wait(10)
        self.sent.append(message.notification_id)


def test_two_dispatchers_never_send_the_same_message(ctx: ServiceContext) -> None:
    for actor in [member(ctx) for _ in range(3)]:
        failed_debit(ctx, actor)
    slow, fast = GatedSender(), GatedSender()
    fast.release.set()
    first = threading.Thread(
        target=dispatch_notifications, args=(ctx, Outbound({Channel.SMS: slow}))
    )
    first.start()
    try:
        assert slow.entered.wait(10)
        # The first dispatcher holds all three under its lease: the second finds nothing due.
        assert dispatch_notifications(ctx, Outbound({Channel.SMS: fast})).sent == 0
    finally:
        slow.release.set()
        first.join(10)
    assert len(slow.sent) == 3 and fast.sent == []


@pytest.mark.parametrize("kind", ["membership_joined", "account_registered", "claim_submitted"])
def test_every_event_has_a_message_in_both_languages(
    ctx: ServiceContext, smtp: Mailbox, kind: str
) -> None:
    by_mail(ctx, smtp)
    english = reading_email(ctx, "en", "en@example.org")
    chinese = reading_email(ctx, "zh_CN", "zh@example.org")
    for actor in (english, chinese):
        tell(ctx, actor, kind, plan="mutual-aid", ref="C-9")
    dispatch_notifications(ctx)
    [en], [zh] = smtp.to("en@example.org"), smtp.to("zh@example.org")
    assert en.subject.isascii() and not zh.subject.isascii()
    assert SITE in en.body and SITE in zh.body
