"""Issue #17 on the web: registering sends a phone code by SMS, the member enters it; message
settings; the operator's undelivered messages."""

from __future__ import annotations

import re

from sqlalchemy import select
from tests.factories import account
from tests.mailboxes import Mailbox
from tests.web.conftest import Browser, phone_of

from mutualaid.clock import FixedClock
from mutualaid.db.models import Account
from mutualaid.domain.accounts import Role
from mutualaid.domain.notifications import MAX_ATTEMPTS, Channel, retry_delay
from mutualaid.services.context import MessageChannels, ServiceContext
from mutualaid.services.notifications import (
    DeliveryFailed,
    Outbound,
    OutboundMessage,
    dispatch_notifications,
    get_preferences,
)

SMS = "sms-{to}@sms.example.org"


def test_registering_sends_a_code_that_the_member_enters_to_verify_the_phone(
    ctx: ServiceContext, browser: Browser, smtp: Mailbox
) -> None:
    ctx.messages = MessageChannels(sms_url=smtp.url(SMS))
    phone = "13911113333"
    registered = browser.submit(
        "/register",
        "/register",
        {"phone": phone, "password": "secret-passphrase", "password_again": "secret-passphrase"},
    )
    assert registered.headers["location"] == "/me?ok=registered"
    assert "您的手机号码尚未验证" in browser.get("/me").text
    [sms] = smtp.to(SMS.format(to=phone))
    code = re.search(r"\b(\d{6})\b", sms.body)
    assert code
    wrong = browser.submit("/me/phone", "/me/phone/verify", {"code": "12345x"})
    assert wrong.status_code == 422 and "验证码错误（还可尝试4次）" in wrong.text
    done = browser.submit("/me/phone", "/me/phone/verify", {"code": code.group(1)})
    assert done.headers["location"] == "/me?ok=phone_verified"
    assert "您的手机号码尚未验证" not in browser.get("/me").text


def test_a_member_chooses_email_in_english_and_opts_out_of_news(
    ctx: ServiceContext, member_browser: Browser
) -> None:
    refused = member_browser.submit(
        "/me/settings", "/me/settings", {"locale": "en", "channel": "email", "email": ""}
    )
    assert refused.status_code == 422
    assert "通过电子邮件接收消息，请填写电子邮箱地址" in refused.text
    saved = member_browser.submit(
        "/me/settings",
        "/me/settings",
        {"locale": "en", "channel": "email", "email": "li.wei@example.org"},
    )
    assert saved.headers["location"] == "/me/settings?ok=settings_saved"
    page = member_browser.get("/me/settings").text
    assert 'value="email" checked' in page and "li.wei@example.org" in page
    with ctx.reading() as session:
        account_id = session.scalar(select(Account.id).where(Account.email.is_not(None)))
    assert account_id is not None
    chosen = get_preferences(ctx, account_id)
    assert (chosen.locale, chosen.channel, chosen.optional) == ("en", "email", False)


class Down:
    def send(self, message: OutboundMessage) -> None:
        raise DeliveryFailed("the sms channel refused the message")


def test_an_operator_sees_undelivered_messages_and_sends_them_again(
    ctx: ServiceContext, clock: FixedClock, client: object
) -> None:
    account(ctx)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        dispatch_notifications(ctx, Outbound({Channel.SMS: Down()}))
        clock.advance(retry_delay(attempt))
    ctx.messages = MessageChannels()  # the log channel: delivery works again
    operator = Browser(client)  # type: ignore[arg-type]
    operator.log_in(phone_of(ctx, account(ctx, Role.OPERATOR).account_id))
    page = operator.get("/staff/notifications").text
    assert "account_registered" in page and "the sms channel refused the message" in page
    sent = operator.submit("/staff/notifications", "/staff/notifications/retry", {})
    assert sent.status_code == 303
    assert "没有未送达的消息" in operator.get("/staff/notifications").text
