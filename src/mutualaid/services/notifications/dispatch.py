"""Draining the outbox: claim a batch under a lease, send each message outside any transaction,
record what happened; failures back off, and after MAX_ATTEMPTS become dead letters.

Two dispatchers never send the same message: a batch is claimed by one UPDATE … WHERE id IN
(SELECT … FOR UPDATE SKIP LOCKED) that stamps the rows with the dispatcher's lease token (on
SQLite the write transaction is exclusive), and results are written only to rows that still carry
that token. A message is sent twice only if a dispatcher dies between the channel's answer and the
record, after its lease ran out (at-least-once, like every outbox).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Row, Table, bindparam, or_, select, update

from mutualaid.db.models import Account, Notification
from mutualaid.domain.notifications import (
    Channel,
    Recipient,
    is_dead,
    retry_delay,
    route,
)
from mutualaid.services import audit
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import Once, UnitOfWork
from mutualaid.services.notifications.channels import (
    DeliveryFailed,
    Outbound,
    OutboundMessage,
    outbound_for,
)
from mutualaid.services.notifications.messages import render

log = structlog.get_logger()

#: How long a claimed batch is the claimant's; a batch of 500 e-mails takes well under this.
LEASE = timedelta(minutes=10)
BATCH = 500
#: Messages in flight at once within a batch (SMTP and SMS gateways answer in a round trip).
PARALLEL = 8


@dataclass(frozen=True, slots=True)
class DispatchResult:
    sent: int
    failed: int
    #: Optional notices not sent because the member opted out (they stay in the app).
    skipped: int = 0
    #: Failures that spent the last try and are now dead letters.
    dead: int = 0


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    account_id: int
    kind: str
    attempts: int
    created_at: datetime
    dead_at: datetime
    last_error: str | None


_table = Notification.__table__
assert isinstance(_table, Table)
_SENT = (
    update(_table)
    .where(_table.c.id == bindparam("b_id"), _table.c.lease_token == bindparam("b_token"))
    .values(
        sent_at=bindparam("b_at"),
        channel=bindparam("b_channel"),
        lease_token=None,
        leased_until=None,
    )
)
_FAILED = (
    update(_table)
    .where(_table.c.id == bindparam("b_id"), _table.c.lease_token == bindparam("b_token"))
    .values(
        attempts=bindparam("b_attempts"),
        next_attempt_at=bindparam("b_next"),
        dead_at=bindparam("b_dead"),
        last_error=bindparam("b_error"),
        channel=bindparam("b_channel"),
        lease_token=None,
        leased_until=None,
    )
)


def dispatch_notifications(
    ctx: ServiceContext,
    outbound: Outbound | None = None,
    *,
    batch: int = BATCH,
    parallel: int = PARALLEL,
) -> DispatchResult:
    """Send every due message, one claimed batch at a time, until none is due. Within a batch up
    to `parallel` messages are in flight at once (a gateway's answer takes a round trip)."""
    outbound = outbound or outbound_for(ctx.messages)
    total = DispatchResult(0, 0)
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        while True:
            claimed, done = _dispatch_batch(ctx, outbound, batch, pool)
            total = DispatchResult(
                total.sent + done.sent,
                total.failed + done.failed,
                total.skipped + done.skipped,
                total.dead + done.dead,
            )
            if claimed < batch:
                return total


def _attempt(outbound: Outbound, message: OutboundMessage) -> Exception | None:
    try:
        outbound.send(message)
    except Exception as error:
        return error
    return None


def _dispatch_batch(
    ctx: ServiceContext, outbound: Outbound, batch: int, pool: ThreadPoolExecutor
) -> tuple[int, DispatchResult]:
    token = secrets.token_hex(16)
    rows = _claim(ctx, token, batch)
    if not rows:
        return 0, DispatchResult(0, 0)
    sent: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    skipped = dead = 0
    pending: list[tuple[Row[Any], dict[str, Any], Future[Exception | None]]] = []
    for row in rows:
        recipient = Recipient(
            row.phone, row.email, row.notify_channel, row.notify_optional, row.locale
        )
        way = route(row.kind, recipient, row.account_id, outbound.configured)
        values: dict[str, Any] = {"b_id": row.id, "b_token": token, "b_channel": str(way.channel)}
        if way.channel is Channel.NONE:
            skipped += 1
            sent.append(values)
            continue
        outcome: Future[Exception | None]
        try:
            text = render(row.kind, row.payload, row.locale, ctx.messages.public_url)
        except Exception as error:
            outcome = Future()
            outcome.set_result(error)
        else:
            message = OutboundMessage(
                row.id,
                row.account_id,
                row.kind,
                way.channel,
                way.to,
                row.locale,
                text.subject,
                text.body,
            )
            if way.channel is Channel.LOG:  # a log line: no round trip to wait for
                outcome = Future()
                outcome.set_result(_attempt(outbound, message))
            else:
                outcome = pool.submit(_attempt, outbound, message)
        pending.append((row, values, outcome))
    for row, values, outcome in pending:
        refusal = outcome.result()
        if refusal is None:
            sent.append(values)
            continue
        attempts = row.attempts + 1
        dead += is_dead(attempts)
        failed.append(values | _failure(ctx.clock.now(), attempts, refusal))
    now = ctx.clock.now()
    uow: UnitOfWork[DispatchResult] = ctx.unit_of_work()
    with uow:
        connection = uow.session.connection()
        if sent:
            connection.execute(_SENT, [values | {"b_at": now} for values in sent])
        if failed:
            connection.execute(_FAILED, failed)
        uow.commit(DispatchResult(len(sent) - skipped, len(failed), skipped, dead))
    if failed:
        log.warning("notifications_failed", failed=len(failed), dead=dead)
    return len(rows), uow.result


def _failure(now: datetime, attempts: int, error: Exception) -> dict[str, Any]:
    reason = str(error) if isinstance(error, DeliveryFailed) else type(error).__name__
    return {
        "b_attempts": attempts,
        "b_next": now + retry_delay(attempts),
        "b_dead": now if is_dead(attempts) else None,
        "b_error": reason[:200],
    }


def _claim(ctx: ServiceContext, token: str, batch: int) -> Sequence[Row[Any]]:
    """Stamp up to `batch` due messages with this dispatcher's lease; read them with their
    recipients. Rows another dispatcher holds are skipped, not waited for."""
    uow: UnitOfWork[Sequence[Row[Any]]] = ctx.unit_of_work()
    with uow:
        session = uow.session
        now = ctx.clock.now()
        due = (
            select(Notification.id)
            .where(
                Notification.sent_at.is_(None),
                Notification.dead_at.is_(None),
                or_(Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= now),
                or_(Notification.leased_until.is_(None), Notification.leased_until < now),
            )
            .order_by(Notification.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        session.execute(
            update(Notification)
            .where(Notification.id.in_(due.scalar_subquery()))
            .values(lease_token=token, leased_until=now + LEASE)
            .execution_options(synchronize_session=False)
        )
        rows = session.execute(
            select(
                Notification.id,
                Notification.account_id,
                Notification.kind,
                Notification.payload,
                Notification.attempts,
                Account.phone,
                Account.email,
                Account.notify_channel,
                Account.notify_optional,
                Account.locale,
            )
            .join(Account, Account.id == Notification.account_id)
            .where(Notification.lease_token == token)
            .order_by(Notification.id)
        ).all()
        uow.commit(rows)
    return uow.result


def deliver_now(
    ctx: ServiceContext, account_id: int, kind: str, payload: dict[str, Any], phone: str
) -> Channel:
    """Send one message at once, outside the outbox (a phone code: it must never be stored in
    clear, and is useless after minutes). Raises DeliveryFailed when the channel refuses."""
    outbound = outbound_for(ctx.messages)
    with ctx.reading() as session:
        account = session.get_one(Account, account_id)
        recipient = Recipient(phone, account.email, "sms", True, account.locale)
    way = route(kind, recipient, account_id, outbound.configured)
    text = render(kind, payload, recipient.locale, ctx.messages.public_url)
    outbound.send(
        OutboundMessage(
            None, account_id, kind, way.channel, way.to, recipient.locale, text.subject, text.body
        )
    )
    return way.channel


# --- the operator's view ---------------------------------------------------------------------


def list_dead_letters(ctx: ServiceContext, *, limit: int = 100) -> list[DeadLetter]:
    with ctx.reading() as session:
        rows = session.execute(
            select(
                Notification.id,
                Notification.account_id,
                Notification.kind,
                Notification.attempts,
                Notification.created_at,
                Notification.dead_at,
                Notification.last_error,
            )
            .where(Notification.dead_at.is_not(None))
            .order_by(Notification.id)
            .limit(max(1, min(limit, 1000)))
        ).all()
    return [
        DeadLetter(id_, account_id, kind, attempts, created_at, dead_at, error)
        for id_, account_id, kind, attempts, created_at, dead_at, error in rows
        if dead_at is not None
    ]


def retry_dead_letters(
    ctx: ServiceContext,
    actor_account_id: int | None,
    ids: Iterable[int] | None = None,
    *,
    idempotency_key: str | None = None,
) -> int:
    """Put dead letters (all, or the ones named) back in the outbox with fresh tries. A retry
    under the same key (an operator's account) answers the first count and retries nothing more."""
    wanted = None if ids is None else sorted(set(ids))
    once = (
        Once(actor_account_id, idempotency_key, "retry_dead_letters", {"ids": wanted}, int)
        if actor_account_id is not None
        else None
    )
    uow: UnitOfWork[int] = ctx.unit_of_work(once)
    with uow:
        query = update(Notification).where(Notification.dead_at.is_not(None))
        if wanted is not None:
            query = query.where(Notification.id.in_(wanted))
        result = uow.session.execute(
            query.values(dead_at=None, attempts=0, next_attempt_at=None).execution_options(
                synchronize_session=False
            )
        )
        count = int(getattr(result, "rowcount", 0) or 0)
        audit.record(
            uow.session,
            at=ctx.clock.now(),
            actor_account_id=actor_account_id,
            action="notifications_retried",
            subject_type="notification",
            subject_id=None,
            count=count,
            ids=wanted,
        )
        uow.commit(count)
    return uow.result
