"""Issue #17: the operator sees the outbox's dead letters and sends them again once fixed."""

from __future__ import annotations

import pytest
from tests.cli.cli import mutualaid, said
from tests.factories import account
from tests.mailboxes import Mailbox

from mutualaid.clock import FixedClock
from mutualaid.domain.notifications import MAX_ATTEMPTS, Channel, retry_delay
from mutualaid.services.accounts.accounts import get_account
from mutualaid.services.context import ServiceContext
from mutualaid.services.notifications import (
    DeliveryFailed,
    Outbound,
    OutboundMessage,
    dispatch_notifications,
    notify,
    set_preferences,
)


class Down:
    def send(self, message: OutboundMessage) -> None:
        raise DeliveryFailed("the email channel refused the message")


def test_dead_letters_are_listed_and_retried_through_the_configured_channel(
    ctx: ServiceContext, clock: FixedClock, smtp: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = account(ctx)
    dispatch_notifications(ctx, Outbound())  # the welcome message, to the log
    set_preferences(ctx, member.account_id, locale="en", channel="email", email="a@example.org")
    with ctx.sessions.begin() as session:
        notify(
            session,
            at=clock.now(),
            account_id=member.account_id,
            kind="share_payment_failed",
            subject_type="period",
            subject_id=None,
            period="2026-03-07",
            amount_fen=5000,
            retry_until="2026-03-21",
        )
    for attempt in range(1, MAX_ATTEMPTS + 1):
        dispatch_notifications(ctx, Outbound({Channel.EMAIL: Down()}))
        clock.advance(retry_delay(attempt))
    listed = mutualaid("notifications", "dead-letters")
    assert listed.exit_code == 0, listed.output
    assert "share_payment_failed" in listed.output and "refused" in said(listed.output)
    monkeypatch.setenv("MUTUALAID_NOTIFY_EMAIL_URL", smtp.url())
    monkeypatch.setenv("MUTUALAID_PUBLIC_URL", "https://plan.example.org")
    retried = mutualaid("notifications", "retry")
    assert retried.exit_code == 0, retried.output
    assert "1 dead letters back in the outbox" in said(retried.output)
    [mail] = smtp.to("a@example.org")
    assert "¥50.00" in mail.subject and "https://plan.example.org/me" in mail.body
    assert "no dead letters" in mutualaid("notifications", "dead-letters").output


def test_an_operator_vouches_for_a_phone(ctx: ServiceContext) -> None:
    member = account(ctx, phone="13955550000")
    assert mutualaid("accounts", "verify-phone", "--phone", "13955550000").exit_code == 0
    assert get_account(ctx, member.account_id).phone_verified
    unknown = mutualaid("accounts", "verify-phone", "--phone", "13955550001")
    assert unknown.exit_code != 0 and "no account" in unknown.output
