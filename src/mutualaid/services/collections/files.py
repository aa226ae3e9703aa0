"""The collection file for a real provider: the debit instructions out, the results file in."""

from __future__ import annotations

import bisect
import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date
from typing import IO, TYPE_CHECKING

from sqlalchemy import Text, cast, func, literal, select
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    CollectionFailure,
    Membership,
)
from mutualaid.db.queries.collections import concatenated
from mutualaid.db.queries.plans import plan_by_code, rules_of
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.apportionment import (
    PeriodState,
    reached,
    take_in_order,
)
from mutualaid.domain.calendars import local_date
from mutualaid.domain.errors import Conflict, DomainError
from mutualaid.domain.ledger import PROVIDER, Leg, plan_account, transaction
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.collections.debits import (
    DEFAULT_CHUNK,
    CollectionRun,
    Progress,
    start_collecting,
)
from mutualaid.services.collections.dues import payer_dues, record_unpaid
from mutualaid.services.context import ServiceContext
from mutualaid.services.ledger.ledger import post
from mutualaid.services.periods.sharing import EXCLUDED, ChargeRule, charge_rule
from mutualaid.services.periods.views import find_period

# --- the collection file (for a real provider) ----------------------------------------------------

COLLECTION_HEADER = "membership_id,payer_account_id,amount_fen,reference\n"
RESULTS_HEADER = "membership_id,status"

if TYPE_CHECKING:
    from mutualaid.services.idempotency import UnitOfWork


def export_collection_file(
    ctx: ServiceContext,
    plan_code: str,
    publicity_on: date,
    out: IO[bytes],
    progress: Progress | None = None,
) -> int:
    """Stream the period's debit instructions as CSV, one line per charged membership: membership,
    payer, amount, reference (``<period>:<membership>``, the provider's idempotency key).

    One line per membership, not per payer: no GROUP BY, so no sort — the file streams at the
    speed of one table scan, with flat memory. A payer's lines add up to what they owe; the
    results are applied per payer (`import_collection_results`). Returns the number of lines.
    """
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        period = find_period(session, plan, publicity_on)
        if not reached(PeriodState(period.state), PeriodState.COMMITTED):
            raise Conflict(
                "period_not_committed",
                f"close period {period.ref} first",
                details={"period": period.ref},
            )
        rule = charge_rule(session, period)
        out.write(COLLECTION_HEADER.encode())
        return _export_ranges(session, rule, out, progress, period.member_count or 0)


def _export_ranges(
    session: Session, rule: ChargeRule, out: IO[bytes], progress: Progress | None, total: int
) -> int:
    """Id range by id range (65,536 ids a query, ascending), each range's lines built by the
    database as one string (SQLite ``group_concat``, PostgreSQL ``string_agg``): the
    per-row work stays in the database's C code and Python sees a few hundred strings (a row-by-
    row stream, even PostgreSQL's COPY, costs a Python call per line). The few exception
    memberships are left out of the ranges and written last."""
    charge = rule.charge_sql()
    line = (
        cast(Membership.id, Text())
        + literal(",")
        + cast(Membership.payer_account_id, Text())
        + literal(",")
        + cast(charge, Text())
        + literal("," + rule.period_ref + ":")
        + cast(Membership.id, Text())
        + literal("\n")
    )
    # In the order the range is read (by id, from the primary key); the file's order is not part
    # of its meaning, so no ORDER BY (on PostgreSQL it would sort each range: 2× slower).
    lines_of_range = concatenated(session, line)
    lowest, highest = session.execute(
        select(func.min(Membership.id), func.max(Membership.id))
    ).one()
    skip = sorted(rule.exceptions)
    lines = 0
    step = 1 << 16
    for low in range(lowest or 0, (highest or -1) + 1, step):
        where = [*rule.where(session), Membership.id >= low, Membership.id < low + step, charge > 0]
        excepted = skip[bisect.bisect_left(skip, low) : bisect.bisect_left(skip, low + step)]
        if excepted:
            where.append(Membership.id.not_in(excepted))
        text = session.scalar(select(lines_of_range).where(*where))
        if text:
            out.write(text.encode())
            lines += text.count("\n")
            if progress:
                progress(lines, total)
    own = [
        (m, kind, amount)
        for m, (kind, amount) in sorted(rule.exceptions.items())
        if kind != EXCLUDED and amount > 0
    ]
    if own:
        payers = dict(
            session.execute(
                select(Membership.id, Membership.payer_account_id).where(
                    Membership.id.in_([m for m, _, _ in own])
                )
            ).all()
        )
        text = "".join(f"{m},{payers[m]},{amount},{rule.period_ref}:{m}\n" for m, _, amount in own)
        out.write(text.encode())
        lines += len(own)
    return lines


def import_collection_results(
    ctx: ServiceContext,
    actor: Actor,
    plan_code: str,
    publicity_on: date,
    lines: Iterable[str],
    *,
    chunk: int = DEFAULT_CHUNK,
) -> CollectionRun:
    """Apply a provider's results file: ``membership_id,status`` per line, status ``paid`` or
    ``failed``. Memberships not listed were paid. A payer with a failed line is treated as having
    paid the rest of what they owe, and that is taken in payment order: their own share first,
    then family members by joining order; what is left unpaid is suspended and retried.
    Streamed (only failed lines are kept); a re-import changes nothing."""
    require_role(actor.role, Role.OPERATOR)
    started = start_collecting(ctx, plan_code, publicity_on, by_file=True)
    if started is None:
        raise Conflict("already_collected", "this period's collection is already complete")
    failed_ids = sorted(
        {membership for membership, status in _parse_results(lines) if status == "failed"}
    )
    unknown: list[int] = []
    failed = 0
    for offset in range(0, len(failed_ids), chunk):
        per_chunk: UnitOfWork[None] = ctx.unit_of_work()
        with per_chunk as chunk_uow:
            session = chunk_uow.session
            plan = plan_by_code(session, plan_code)
            period = find_period(session, plan, publicity_on, for_update=True)
            now = ctx.clock.now()
            today = local_date(now, rules_of(session, plan.id, period.plan_version).zone)
            rule = charge_rule(session, period)
            batch = failed_ids[offset : offset + chunk]
            by_payer: dict[int, set[int]] = defaultdict(set)
            for membership_id, payer in session.execute(
                select(Membership.id, Membership.payer_account_id).where(
                    Membership.plan_id == plan.id, Membership.id.in_(batch)
                )
            ):
                by_payer[payer].add(membership_id)
            unknown.extend(sorted(set(batch) - {m for ms in by_payer.values() for m in ms}))
            for payer, failed_memberships in sorted(by_payer.items()):
                dues = payer_dues(session, rule, payer)
                charged = {d.membership_id for d in dues}
                unknown.extend(sorted(failed_memberships - charged))
                paid_fen = sum(
                    d.charge_fen for d in dues if d.membership_id not in failed_memberships
                )
                _, unpaid = take_in_order(paid_fen, dues)
                failed += record_unpaid(session, period, payer, unpaid, now, today)
            chunk_uow.commit(None)
    closing: UnitOfWork[CollectionRun] = ctx.unit_of_work()
    with closing as uow:
        session = uow.session
        plan = plan_by_code(session, plan_code)
        period = find_period(session, plan, publicity_on, for_update=True)
        now = ctx.clock.now()
        failed_total = int(
            session.scalar(
                select(func.coalesce(func.sum(CollectionFailure.amount_fen), 0)).where(
                    CollectionFailure.period_id == period.id
                )
            )
            or 0
        )
        collected = (period.total_charged_fen or 0) - failed_total
        if collected:
            post(
                session,
                transaction(
                    f"collect:{period.ref}:file",
                    "collection",
                    [Leg(plan_account(plan.code, "members"), collected), Leg(PROVIDER, -collected)],
                    memo=f"shares of {period.ref}, collection file",
                ),
                at=now,
                plan_id=plan.id,
                period_id=period.id,
                actor_id=actor.recorded_id,
            )
        period.failed_fen = failed_total
        period.collect_cursor = None
        period.state = PeriodState.COLLECTED
        period.collected_at = now
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="period_collected",
            subject_type="period",
            subject_id=period.id,
            ref=period.ref,
            failed_fen=failed_total,
            source="file",
        )
        uow.commit(
            CollectionRun(period.ref, PeriodState.COLLECTED, 0, collected, failed_total, unknown)
        )
    return uow.result


def _parse_results(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    for number, row in enumerate(csv.reader(lines), start=1):
        if not row or (number == 1 and row[0] == "membership_id"):
            continue
        try:
            membership = int(row[0])
            status = row[1].strip().lower()
        except (IndexError, ValueError):
            raise DomainError(
                "invalid_results_file",
                f"line {number}: expected {RESULTS_HEADER}",
                "file",
                details={"line": number},
            ) from None
        if status not in ("paid", "failed"):
            raise DomainError(
                "invalid_results_file",
                f"line {number}: status is paid or failed",
                "file",
                details={"line": number},
            )
        yield membership, status


def results_file_text(rows: Iterable[tuple[int, str]]) -> str:
    """A results file as a provider would send it (tests, demo)."""
    buffer = io.StringIO()
    buffer.write(RESULTS_HEADER + "\n")
    for membership, status in rows:
        buffer.write(f"{membership},{status}\n")
    return buffer.getvalue()
