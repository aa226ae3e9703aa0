from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from tests.factories import account

from mutualaid.clock import FixedClock
from mutualaid.db.models import Notification
from mutualaid.domain.notifications import Channel
from mutualaid.services.context import ServiceContext
from mutualaid.services.notifications import (
    DeliveryFailed,
    Outbound,
    OutboundMessage,
    dispatch_notifications,
    mark_read,
    notify,
    unread_count,
)


class RecordingSender:
    def __init__(self, fail_for: set[int] | None = None) -> None:
        self.sent: list[tuple[int, str]] = []
        self.fail_for = fail_for or set()

    def send(self, message: OutboundMessage) -> None:
        if message.account_id in self.fail_for:
            raise DeliveryFailed("SMS gateway down")
        self.sent.append((message.account_id, message.kind))


def by_sms(sender: RecordingSender) -> Outbound:
    return Outbound({Channel.SMS: sender})


def test_notifications_are_sent_once_and_failures_are_retried_after_a_pause(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    alice, bob = account(ctx), account(ctx)
    dispatch_notifications(ctx, by_sms(RecordingSender()))  # their welcome messages
    with ctx.sessions.begin() as session:
        for who in (alice, bob):
            notify(
                session,
                at=ctx.clock.now(),
                account_id=who.account_id,
                kind="claim_approved",
                subject_type="claim",
                subject_id=1,
                ref="C1",
            )
    flaky = RecordingSender(fail_for={bob.account_id})
    first = dispatch_notifications(ctx, by_sms(flaky))
    assert (first.sent, first.failed) == (1, 1)
    working = RecordingSender()
    assert dispatch_notifications(ctx, by_sms(working)).sent == 0  # backing off
    clock.advance(timedelta(minutes=1))
    second = dispatch_notifications(ctx, by_sms(working))
    assert working.sent == [(bob.account_id, "claim_approved")]
    assert (second.sent, second.failed) == (1, 0)
    assert dispatch_notifications(ctx, by_sms(RecordingSender())).sent == 0


def test_unread_notifications_are_counted_until_read(ctx: ServiceContext) -> None:
    alice = account(ctx)
    assert unread_count(ctx, alice.account_id) == 1  # the welcome notice
    with ctx.sessions.begin() as session:
        for _ in range(3):
            notify(
                session,
                at=ctx.clock.now(),
                account_id=alice.account_id,
                kind="x",
                subject_type="claim",
                subject_id=None,
            )
    assert unread_count(ctx, alice.account_id) == 4
    with ctx.reading() as session:
        newest = max(session.scalars(select(Notification.id)))
    mark_read(ctx, alice.account_id, newest)
    assert unread_count(ctx, alice.account_id) == 0
