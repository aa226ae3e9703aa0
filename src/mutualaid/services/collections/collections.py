"""Collecting a period's shares, retrying failures, prepaid balances, and paying the cases.

A payer owes, per period, the sum of the charges of the memberships they pay for. Collection asks
each payer once, in chunks of payers (keyset on payer id); what simply succeeds is not stored: it is
implied by the period's cursor and the chunk's one ledger transaction. Only a failure is a row
(`collection_failures`, one per unpaid membership): the payer's own share is taken before family
members' shares, family members by joining order; an unpaid membership is suspended, retried daily
for the plan's retry days, then removed, and its share written off to the sponsor.

Re-running is safe: each chunk commits its cursor, failures and ledger entry together, and every
debit carries an idempotency key (``<period>:<payer>``), so a provider asked again after a crash
answers the first result instead of debiting twice.
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import io
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol

from sqlalchemy import Text, cast, func, literal, select
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Claim,
    CollectionFailure,
    Membership,
    Period,
    PeriodChargeException,
    Person,
    Plan,
    PrepaidBalance,
)
from mutualaid.db.queries.plans import current_rules, plan_by_code, rules_of
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.apportionment import (
    Due,
    PeriodState,
    payment_order,
    prorate_payouts,
    prorated_split,
    reached,
    take_in_order,
)
from mutualaid.domain.calendars import local_date
from mutualaid.domain.claims import ClaimEvent, ClaimState
from mutualaid.domain.errors import Conflict, DomainError
from mutualaid.domain.ledger import PROVIDER, SPONSOR, Leg, plan_account, transaction
from mutualaid.domain.memberships import EndReason, MembershipState, Relation
from mutualaid.domain.money import format_yuan
from mutualaid.domain.plans import FundingModel
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.claims.claims import apply_event as apply_claim_event
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import run_idempotent
from mutualaid.services.ledger.ledger import post
from mutualaid.services.notifications import notify
from mutualaid.services.periods.sharing import EXCLUDED, ChargeRule, charge_rule
from mutualaid.services.periods.views import find_period

#: Called with (memberships done, memberships in all) during long runs.
Progress = Callable[[int, int], None]
DEFAULT_CHUNK = 2_000

# --- the payment provider -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DebitResult:
    ok: bool
    message: str = ""


class PaymentProvider(Protocol):
    """Whoever moves the money (a bank, Alipay, WeChat Pay). `debit` must be idempotent: asked
    again with the same key it answers the first result and moves no more money."""

    name: str

    def debit(
        self, payer_account_id: int, amount_fen: int, idempotency_key: str
    ) -> DebitResult: ...


class SimulatedProvider:
    """The built-in provider for the demo and tests: deterministic, idempotent, journaled.

    A payer fails when listed in `failing`, when a keyed hash of their id falls under
    `failure_bp` (basis points of payers), or when `funds` gives them less than asked. Every
    successful debit is appended to `journal` (if given), so a second process sees what the first
    one debited, as a real provider's idempotency keys would.
    """

    name = "simulated"

    def __init__(
        self,
        *,
        failure_bp: int = 0,
        failing: Iterable[int] = (),
        funds: Mapping[int, int] | None = None,
        journal: Path | None = None,
        seed: str = "mutualaid",
    ) -> None:
        self.failure_bp = failure_bp
        self.failing = set(failing)
        self.funds = dict(funds) if funds is not None else None
        self.journal = journal
        self.seed = seed
        self.results: dict[str, DebitResult] = {}
        self.debits: dict[str, tuple[int, int]] = {}
        if journal is not None and journal.exists():
            for line in journal.read_text().splitlines():
                key, payer, amount = line.rsplit(",", 2)
                self.debits[key] = (int(payer), int(amount))
                self.results[key] = DebitResult(True)

    def fails(self, payer_account_id: int) -> bool:
        if payer_account_id in self.failing:
            return True
        digest = hashlib.sha256(f"{self.seed}:{payer_account_id}".encode()).digest()
        return int.from_bytes(digest[:4], "big") % 10_000 < self.failure_bp

    def debit(self, payer_account_id: int, amount_fen: int, idempotency_key: str) -> DebitResult:
        if idempotency_key in self.results:
            return self.results[idempotency_key]
        if amount_fen <= 0:
            raise ValueError("a debit is for a positive amount")
        if self.fails(payer_account_id):
            result = DebitResult(False, "declined")
        elif self.funds is not None and self.funds.get(payer_account_id, 0) < amount_fen:
            result = DebitResult(False, "insufficient funds")
        else:
            if self.funds is not None:
                self.funds[payer_account_id] -= amount_fen
            self.debits[idempotency_key] = (payer_account_id, amount_fen)
            if self.journal is not None:
                with self.journal.open("a") as handle:
                    handle.write(f"{idempotency_key},{payer_account_id},{amount_fen}\n")
            result = DebitResult(True)
        self.results[idempotency_key] = result
        return result


# --- what each payer owes ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Owed:
    payer_account_id: int
    amount_fen: int


def _payers_owing(session: Session, rule: ChargeRule, after: int, upto: int | None) -> list[_Owed]:
    """Each payer in (after, upto] and their total due, exceptions applied."""
    dialect = session.get_bind().dialect.name
    where = [*rule.where(dialect), Membership.payer_account_id > after]
    if upto is not None:
        where.append(Membership.payer_account_id <= upto)
    totals: dict[int, int] = {
        payer: int(total)
        for payer, total in session.execute(
            select(Membership.payer_account_id, func.sum(rule.charge_sql()))
            .where(*where)
            .group_by(Membership.payer_account_id)
        )
    }
    if rule.exceptions:
        for payer, joined_at, membership_id, birth_on in session.execute(
            select(
                Membership.payer_account_id, Membership.joined_at, Membership.id, Person.birth_on
            )
            .join(PeriodChargeException, PeriodChargeException.membership_id == Membership.id)
            .join(Person, Person.id == Membership.person_id)
            .where(PeriodChargeException.period_id == rule.period_id, *where)
        ):
            kind, amount = rule.exceptions[membership_id]
            totals[payer] += (0 if kind == EXCLUDED else amount) - rule.cohort_charge(
                joined_at, birth_on
            )
    return [_Owed(payer, amount) for payer, amount in sorted(totals.items()) if amount > 0]


def _dues(session: Session, rule: ChargeRule, payer: int) -> list[Due]:
    """The payer's charged memberships in this period, in payment order."""
    rows = session.execute(
        select(Membership.id, Membership.joined_at, Person.relation, Person.birth_on)
        .join(Person, Person.id == Membership.person_id)
        # (On SQLite ``plan_id + 0`` leaves the payer index as the only one to use.)
        .where(*rule.where(session.get_bind().dialect.name), Membership.payer_account_id == payer)
    ).all()
    dues = []
    for membership_id, joined_at, relation, birth_on in rows:
        charge = rule.charge_of(membership_id, joined_at, birth_on)
        if charge:
            dues.append(Due(membership_id, charge, relation == Relation.SELF, joined_at))
    return payment_order(dues)


def _next_bound(session: Session, plan_id: int, after: int, chunk: int) -> int | None:
    """The payer id that ends a chunk of about `chunk` memberships after `after` (None: the rest).
    (On SQLite ``plan_id + 0`` keeps the walk on the payer index.)"""
    plan_match = (
        (Membership.plan_id + 0 == plan_id)
        if session.get_bind().dialect.name == "sqlite"
        else (Membership.plan_id == plan_id)
    )
    return session.scalar(
        select(Membership.payer_account_id)
        .where(plan_match, Membership.payer_account_id > after)
        .order_by(Membership.payer_account_id)
        .offset(max(chunk - 1, 0))
        .limit(1)
    )


# --- recording what was not paid ----------------------------------------------------------------


def _record_unpaid(
    session: Session, period: Period, payer: int, unpaid: Iterable[Due], now: datetime, today: date
) -> int:
    """A failure row per unpaid membership; each is suspended until paid or removed."""
    failed = 0
    for due in unpaid:
        if (
            session.scalar(
                select(CollectionFailure.id).where(
                    CollectionFailure.period_id == period.id,
                    CollectionFailure.membership_id == due.membership_id,
                )
            )
            is not None
        ):
            continue
        session.add(
            CollectionFailure(
                period_id=period.id,
                membership_id=due.membership_id,
                payer_account_id=payer,
                amount_fen=due.charge_fen,
                status="retrying",
                attempts=1,
                retry_until_on=max(period.debit_on, today)
                + timedelta(days=period.payment_retry_days),
                first_failed_at=now,
                last_attempt_at=now,
                suspended_at=now,
            )
        )
        membership = session.get_one(Membership, due.membership_id)
        if membership.state in (MembershipState.WAITING, MembershipState.COVERED):
            audit.record(
                session,
                at=now,
                actor_account_id=None,
                action="membership_suspend",
                subject_type="membership",
                subject_id=membership.id,
                from_state=membership.state,
                to_state="suspended",
                reason=f"share of {period.ref} unpaid",
            )
            membership.state = MembershipState.SUSPENDED
        failed += due.charge_fen
    if failed:
        notify(
            session,
            at=now,
            account_id=payer,
            kind="share_payment_failed",
            subject_type="period",
            subject_id=period.id,
            period=period.ref,
            amount_fen=failed,
            retry_until=str(
                max(period.debit_on, today) + timedelta(days=period.payment_retry_days)
            ),
        )
    return failed


# --- collection ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CollectionRun:
    period_ref: str
    state: PeriodState
    payers_asked: int = 0
    collected_fen: int = 0
    failed_fen: int = 0
    unknown_payers: list[int] = field(default_factory=list)


#: `collect_cursor` while a results file is being imported (provider runs keep a payer id there).
FILE_MODE = -1


def _start_collecting(
    ctx: ServiceContext, plan_code: str, publicity_on: date, *, by_file: bool
) -> Period | None:
    """committed -> collecting; None when collection is already finished. A period is collected
    either through a provider or through a file, never both."""
    with ctx.transaction() as session:
        plan = plan_by_code(session, plan_code)
        period = find_period(session, plan, publicity_on, for_update=True)
        state = PeriodState(period.state)
        if reached(state, PeriodState.COLLECTED):
            return None
        if state is PeriodState.COMMITTED:
            period.state = PeriodState.COLLECTING
            period.collect_cursor = FILE_MODE if by_file else 0
            period.failed_fen = 0
        elif state is not PeriodState.COLLECTING:
            raise Conflict("period_not_committed", f"close period {period.ref} first")
        elif (period.collect_cursor == FILE_MODE) != by_file:
            raise Conflict(
                "collection_in_progress",
                f"period {period.ref} is being collected "
                f"{'through a results file' if not by_file else 'through a provider'}",
            )
        return period


def collect_period(
    ctx: ServiceContext,
    actor: Actor,
    plan_code: str,
    publicity_on: date,
    provider: PaymentProvider | None = None,
    *,
    chunk: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
    hook: Callable[[str], None] | None = None,
) -> CollectionRun:
    """Debit every payer's share of a committed period (post-paid: through `provider`; prepaid:
    from their balance). Resumable: it continues after the last chunk that committed."""
    require_role(actor.role, Role.OPERATOR)
    started = _start_collecting(ctx, plan_code, publicity_on, by_file=False)
    if started is None:
        return collection_summary(ctx, plan_code, publicity_on)
    with ctx.reading() as session:
        prepaid = (
            current_rules(session, session.get_one(Plan, started.plan_id)).funding_model
            is FundingModel.PREPAID
        )
    if not prepaid and provider is None:
        raise DomainError(
            "provider_required", "a post-paid plan needs a payment provider", "provider"
        )
    asked = collected = failed = done = 0
    while True:
        with ctx.transaction() as session:
            plan = plan_by_code(session, plan_code)
            period = find_period(session, plan, publicity_on, for_update=True)
            if (
                period.state != PeriodState.COLLECTING
                or period.collect_cursor is None
                or period.collect_cursor == FILE_MODE
            ):
                break
            now = ctx.clock.now()
            today = local_date(now, rules_of(session, plan.id, period.plan_version).zone)
            rule = charge_rule(session, period)
            after = period.collect_cursor
            bound = _next_bound(session, plan.id, after, chunk)
            owed = _payers_owing(session, rule, after, bound)
            balances = _balances(session, plan.id, after, bound) if prepaid else {}
            chunk_collected = chunk_failed = 0
            low: list[tuple[int, int, int]] = []
            for item in owed:
                if prepaid:
                    paid, unpaid = _deduct(session, rule, plan.id, item, balances, now)
                    left = balances.get(item.payer_account_id, 0)
                    if left < item.amount_fen:
                        low.append((item.payer_account_id, left, item.amount_fen))
                else:
                    assert provider is not None
                    paid, unpaid = _debit(session, rule, provider, period.ref, item)
                chunk_collected += paid
                chunk_failed += _record_unpaid(
                    session, period, item.payer_account_id, unpaid, now, today
                )
            if hook:
                hook("chunk_debited")  # debits made, nothing recorded yet: the worst moment to die
            for payer, balance, expected in low:
                notify(
                    session,
                    at=now,
                    account_id=payer,
                    kind="prepaid_balance_low",
                    subject_type="plan",
                    subject_id=plan.id,
                    plan=plan.code,
                    balance_fen=balance,
                    next_share_fen=expected,
                )
            if chunk_collected:
                source = plan_account(plan.code, "prepaid") if prepaid else PROVIDER
                post(
                    session,
                    transaction(
                        f"collect:{period.ref}:{after}",
                        "collection",
                        [
                            Leg(plan_account(plan.code, "members"), chunk_collected),
                            Leg(source, -chunk_collected),
                        ],
                        memo=f"shares of {period.ref}, payers {after + 1}..{bound or 'end'}",
                    ),
                    at=now,
                    plan_id=plan.id,
                    period_id=period.id,
                    actor_id=actor.recorded_id,
                )
            period.failed_fen = (period.failed_fen or 0) + chunk_failed
            asked += len(owed)
            collected += chunk_collected
            failed += chunk_failed
            if bound is None:
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
                    failed_fen=period.failed_fen,
                )
            else:
                period.collect_cursor = bound
        done += chunk
        if progress:
            progress(done, started.member_count or 0)
        if hook:
            hook("chunk_committed")
        if bound is None:
            break
    return CollectionRun(started.ref, PeriodState.COLLECTED, asked, collected, failed)


def _debit(
    session: Session, rule: ChargeRule, provider: PaymentProvider, ref: str, item: _Owed
) -> tuple[int, list[Due]]:
    """One debit for the payer's total; if refused, share by share in payment order."""
    payer = item.payer_account_id
    if provider.debit(payer, item.amount_fen, f"{ref}:{payer}").ok:
        return item.amount_fen, []
    paid = 0
    dues = _dues(session, rule, payer)
    for position, due in enumerate(dues):
        if not provider.debit(payer, due.charge_fen, f"{ref}:{payer}:{due.membership_id}").ok:
            return paid, dues[position:]
        paid += due.charge_fen
    return paid, []


def _balances(session: Session, plan_id: int, after: int, bound: int | None) -> dict[int, int]:
    where = [PrepaidBalance.plan_id == plan_id, PrepaidBalance.payer_account_id > after]
    if bound is not None:
        where.append(PrepaidBalance.payer_account_id <= bound)
    return {
        payer: balance
        for payer, balance in session.execute(
            select(PrepaidBalance.payer_account_id, PrepaidBalance.balance_fen).where(*where)
        )
    }


def _deduct(
    session: Session,
    rule: ChargeRule,
    plan_id: int,
    item: _Owed,
    balances: dict[int, int],
    now: datetime,
) -> tuple[int, list[Due]]:
    payer = item.payer_account_id
    balance = balances.get(payer, 0)
    unpaid: list[Due] = []
    if balance >= item.amount_fen:
        paid = item.amount_fen
    else:
        taken, unpaid = take_in_order(balance, _dues(session, rule, payer))
        paid = sum(d.charge_fen for d in taken)
    if paid:
        balances[payer] = balance - paid
        row = session.get_one(PrepaidBalance, (plan_id, payer))
        row.balance_fen -= paid
        row.updated_at = now
    return paid, unpaid


def collection_summary(ctx: ServiceContext, plan_code: str, publicity_on: date) -> CollectionRun:
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        period = find_period(session, plan, publicity_on)
        failed = int(
            session.scalar(
                select(func.coalesce(func.sum(CollectionFailure.amount_fen), 0)).where(
                    CollectionFailure.period_id == period.id
                )
            )
            or 0
        )
        return CollectionRun(
            period.ref,
            PeriodState(period.state),
            0,
            (period.total_charged_fen or 0) - failed,
            failed,
        )


# --- the collection file (for a real provider) ----------------------------------------------------

COLLECTION_HEADER = "membership_id,payer_account_id,amount_fen,reference\n"
RESULTS_HEADER = "membership_id,status"


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
            raise Conflict("period_not_committed", f"close period {period.ref} first")
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
    dialect = session.get_bind().dialect.name
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
    lines_of_range: Any = (
        func.string_agg(line, literal(""))
        if dialect == "postgresql"
        else func.group_concat(line, "")
    )
    lowest, highest = session.execute(
        select(func.min(Membership.id), func.max(Membership.id))
    ).one()
    skip = sorted(rule.exceptions)
    lines = 0
    step = 1 << 16
    for low in range(lowest or 0, (highest or -1) + 1, step):
        where = [*rule.where(dialect), Membership.id >= low, Membership.id < low + step, charge > 0]
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
    started = _start_collecting(ctx, plan_code, publicity_on, by_file=True)
    if started is None:
        raise Conflict("already_collected", "this period's collection is already complete")
    failed_ids = sorted(
        {membership for membership, status in _parse_results(lines) if status == "failed"}
    )
    unknown: list[int] = []
    failed = 0
    for offset in range(0, len(failed_ids), chunk):
        with ctx.transaction() as session:
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
                dues = _dues(session, rule, payer)
                charged = {d.membership_id for d in dues}
                unknown.extend(sorted(failed_memberships - charged))
                paid_fen = sum(
                    d.charge_fen for d in dues if d.membership_id not in failed_memberships
                )
                _, unpaid = take_in_order(paid_fen, dues)
                failed += _record_unpaid(session, period, payer, unpaid, now, today)
    with ctx.transaction() as session:
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
        return CollectionRun(period.ref, PeriodState.COLLECTED, 0, collected, failed_total, unknown)


def _parse_results(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    for number, row in enumerate(csv.reader(lines), start=1):
        if not row or (number == 1 and row[0] == "membership_id"):
            continue
        try:
            membership = int(row[0])
            status = row[1].strip().lower()
        except (IndexError, ValueError):
            raise DomainError(
                "invalid_results_file", f"line {number}: expected {RESULTS_HEADER}", "file"
            ) from None
        if status not in ("paid", "failed"):
            raise DomainError(
                "invalid_results_file", f"line {number}: status is paid or failed", "file"
            )
        yield membership, status


# --- retries, reinstatement, removal -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryRun:
    paid_late: int
    still_failing: int
    removed: int
    written_off_fen: int


def retry_failed_payments(
    ctx: ServiceContext, actor: Actor, plan_code: str, provider: PaymentProvider | None = None
) -> RetryRun:
    """The daily job: ask again for unpaid shares (payer's own first, then family by joining
    order); a paid share reinstates its membership; past the retry days, the membership is removed
    and the share written off to the sponsor."""
    require_role(actor.role, Role.OPERATOR)
    paid_late = still = removed = written_off = 0
    with ctx.transaction() as session:
        plan = plan_by_code(session, plan_code)
        rules = current_rules(session, plan)
        prepaid = rules.funding_model is FundingModel.PREPAID
        if not prepaid and provider is None:
            raise DomainError(
                "provider_required", "a post-paid plan needs a payment provider", "provider"
            )
        now = ctx.clock.now()
        today = local_date(now, rules.zone)
        rows = session.execute(
            select(CollectionFailure, Period, Membership, Person.relation)
            .join(Period, Period.id == CollectionFailure.period_id)
            .join(Membership, Membership.id == CollectionFailure.membership_id)
            .join(Person, Person.id == Membership.person_id)
            .where(Period.plan_id == plan.id, CollectionFailure.status == "retrying")
            .order_by(CollectionFailure.payer_account_id, Period.publicity_on)
            .with_for_update(of=CollectionFailure)
        ).all()
        by_payer: dict[int, list[Any]] = defaultdict(list)
        for row in rows:
            by_payer[row[0].payer_account_id].append(row)
        for items in by_payer.values():
            order = {
                d.membership_id: i
                for i, d in enumerate(
                    payment_order(
                        Due(m.id, f.amount_fen, relation == Relation.SELF, m.joined_at)
                        for f, _, m, relation in items
                    )
                )
            }
            items.sort(key=lambda r: (r[1].publicity_on, order[r[2].id]))
            blocked = False
            for failure, period, membership, _ in items:
                if today > failure.retry_until_on:
                    written_off += _write_off(
                        session, plan, period, failure, membership, now, actor
                    )
                    removed += 1
                    continue
                ok = False
                if not blocked:
                    ok = _retry(session, plan, period, failure, provider, prepaid, today, now)
                if ok:
                    paid_late += 1
                    _reinstate_if_clear(session, membership, failure, today, now)
                else:
                    blocked = True
                    failure.attempts += 1
                    failure.last_attempt_at = now
                    still += 1
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="payments_retried",
            subject_type="plan",
            subject_id=plan.id,
            paid_late=paid_late,
            still_failing=still,
            removed=removed,
            written_off_fen=written_off,
        )
    return RetryRun(paid_late, still, removed, written_off)


def _retry(
    session: Session,
    plan: Plan,
    period: Period,
    failure: CollectionFailure,
    provider: PaymentProvider | None,
    prepaid: bool,
    today: date,
    now: datetime,
) -> bool:
    payer, amount = failure.payer_account_id, failure.amount_fen
    if prepaid:
        balance = session.get(PrepaidBalance, (plan.id, payer))
        if balance is None or balance.balance_fen < amount:
            return False
        balance.balance_fen -= amount
        balance.updated_at = now
        source = plan_account(plan.code, "prepaid")
    else:
        assert provider is not None
        key = f"{period.ref}:{payer}:{failure.membership_id}:retry:{today.isoformat()}"
        if not provider.debit(payer, amount, key).ok:
            return False
        source = PROVIDER
    post(
        session,
        transaction(
            f"late:{period.ref}:{failure.membership_id}",
            "late_payment",
            [Leg(plan_account(plan.code, "members"), amount), Leg(source, -amount)],
            memo=f"share of {period.ref} for membership {failure.membership_id}, paid late",
        ),
        at=now,
        plan_id=plan.id,
        period_id=period.id,
    )
    failure.status = "paid_late"
    failure.resolved_at = now
    failure.last_attempt_at = now
    failure.attempts += 1
    return True


def _reinstate_if_clear(
    session: Session, membership: Membership, failure: CollectionFailure, today: date, now: datetime
) -> None:
    open_failures = (
        session.scalar(
            select(func.count())
            .select_from(CollectionFailure)
            .where(
                CollectionFailure.membership_id == membership.id,
                CollectionFailure.status == "retrying",
                CollectionFailure.id != failure.id,
            )
        )
        or 0
    )
    if membership.state != MembershipState.SUSPENDED or open_failures:
        return
    # Back to what its dates say: a waiting period that is not over is still waiting.
    restored = (
        MembershipState.COVERED if today >= membership.covered_from_on else MembershipState.WAITING
    )
    membership.state = restored
    audit.record(
        session,
        at=now,
        actor_account_id=None,
        action="membership_reinstate",
        subject_type="membership",
        subject_id=membership.id,
        from_state="suspended",
        to_state=str(restored),
        reason="unpaid share paid",
    )
    notify(
        session,
        at=now,
        account_id=membership.payer_account_id,
        kind="membership_reinstated",
        subject_type="membership",
        subject_id=membership.id,
    )


def _write_off(
    session: Session,
    plan: Plan,
    period: Period,
    failure: CollectionFailure,
    membership: Membership,
    now: datetime,
    actor: Actor,
) -> int:
    amount = failure.amount_fen
    post(
        session,
        transaction(
            f"write_off:{period.ref}:{failure.membership_id}",
            "write_off",
            [Leg(plan_account(plan.code, "members"), amount), Leg(SPONSOR, -amount)],
            memo=f"unpaid share of {period.ref} for membership {membership.id}, removed",
        ),
        at=now,
        plan_id=plan.id,
        period_id=period.id,
        actor_id=actor.recorded_id,
    )
    failure.status = "written_off"
    failure.resolved_at = now
    if membership.state == MembershipState.SUSPENDED:
        membership.state = MembershipState.ENDED
        membership.ended_at = now
        membership.end_reason = EndReason.REMOVED_UNPAID
        audit.record(
            session,
            at=now,
            actor_account_id=None,
            action="membership_remove",
            subject_type="membership",
            subject_id=membership.id,
            from_state="suspended",
            to_state="ended",
            reason=f"share of {period.ref} unpaid after the retry days",
        )
        notify(
            session,
            at=now,
            account_id=membership.payer_account_id,
            kind="membership_removed",
            subject_type="membership",
            subject_id=membership.id,
            period=period.ref,
        )
    return amount


# --- prepaid balances -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrepaidView:
    plan_code: str
    balance_fen: int


def top_up(
    ctx: ServiceContext,
    actor: Actor,
    plan_code: str,
    amount_fen: int,
    *,
    idempotency_key: str | None = None,
) -> PrepaidView:
    """A payer adds money to their prepaid balance in a plan (the provider has taken it)."""
    if amount_fen <= 0 or amount_fen > 10_000_000:
        raise DomainError("invalid_amount", "a top-up is 0.01 to 100,000 yuan", "amount_fen")

    def run(session: Session) -> PrepaidView:
        now = ctx.clock.now()
        plan = plan_by_code(session, plan_code)
        if current_rules(session, plan).funding_model is not FundingModel.PREPAID:
            raise DomainError(
                "not_prepaid", "this plan collects shares after the fact, no top-up", "plan_code"
            )
        if plan.status in ("run_off", "closed"):  # issue 8: balances were refunded at the end
            raise DomainError(
                "plan_ended", "this plan has ended: nothing more can be paid in", "plan_code"
            )
        balance = session.get(PrepaidBalance, (plan.id, actor.account_id), with_for_update=True)
        if balance is None:
            balance = PrepaidBalance(
                plan_id=plan.id, payer_account_id=actor.account_id, balance_fen=0, updated_at=now
            )
            session.add(balance)
        key = f"top_up:{plan.code}:{actor.account_id}:{idempotency_key or secrets.token_hex(12)}"
        post(
            session,
            transaction(
                key,
                "top_up",
                [Leg(PROVIDER, -amount_fen), Leg(plan_account(plan.code, "prepaid"), amount_fen)],
                memo=f"top-up by payer {actor.account_id}",
            ),
            at=now,
            plan_id=plan.id,
            actor_id=actor.recorded_id,
        )
        balance.balance_fen += amount_fen
        balance.updated_at = now
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="prepaid_top_up",
            subject_type="plan",
            subject_id=plan.id,
            amount_fen=amount_fen,
        )
        return PrepaidView(plan.code, balance.balance_fen)

    return run_idempotent(
        ctx,
        account_id=actor.account_id,
        key=idempotency_key,
        operation=f"top_up:{plan_code}",
        request={"amount_fen": amount_fen},
        result_type=PrepaidView,
        action=run,
    )


def prepaid_balance(ctx: ServiceContext, actor: Actor, plan_code: str) -> PrepaidView:
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        balance = session.get(PrepaidBalance, (plan.id, actor.account_id))
        return PrepaidView(plan.code, balance.balance_fen if balance else 0)


# --- payouts ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Payout:
    claim_ref: str
    payee_account_id: int
    amount_fen: int
    ledger_key: str


@dataclass(frozen=True, slots=True)
class PayoutRun:
    period_ref: str
    state: PeriodState
    payouts: list[Payout]

    @property
    def total_fen(self) -> int:
        return sum(p.amount_fen for p in self.payouts)


def pay_approved_claims(
    ctx: ServiceContext, actor: Actor, plan_code: str, publicity_on: date
) -> PayoutRun:
    """Pay each case of a collected period once (payee, amount, ledger entry), then mark the
    period paid. A severe-tier payout ends the member's coverage. Resumable claim by claim."""
    require_role(actor.role, Role.OPERATOR)
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        period = find_period(session, plan, publicity_on)
        state = PeriodState(period.state)
        if state is PeriodState.PAID:
            return PayoutRun(period.ref, state, [])
        if not reached(state, PeriodState.COLLECTED):
            raise Conflict("period_not_collected", f"collect period {period.ref} first")
        claims = session.execute(
            select(Claim.id, Claim.ref, Claim.payout_fen, Claim.sponsored)
            .where(Claim.period_id == period.id)
            .order_by(Claim.id)
        ).all()
        shared = [(ref, amount) for _, ref, amount, sponsored in claims if not sponsored]
        aid_cut, _ = prorated_split(
            period.aid_fen or 0, period.fee_fen or 0, period.prorated_fen or 0
        )
        amounts = dict(
            zip([ref for ref, _ in shared], prorate_payouts(shared, aid_cut), strict=True)
        )
    payouts = []
    for claim_id, ref, amount, sponsored in claims:
        payout = _pay_one(ctx, actor, claim_id, amounts.get(ref, amount), sponsored)
        if payout is not None:
            payouts.append(payout)
    with ctx.transaction() as session:
        period = session.get_one(Period, period.id, with_for_update=True)
        unpaid = (
            session.scalar(
                select(func.count())
                .select_from(Claim)
                .where(Claim.period_id == period.id, Claim.state == ClaimState.APPROVED)
            )
            or 0
        )
        if period.state == PeriodState.COLLECTED and not unpaid:
            now = ctx.clock.now()
            period.state = PeriodState.PAID
            period.paid_at = now
            audit.record(
                session,
                at=now,
                actor_account_id=actor.account_id,
                action="period_paid",
                subject_type="period",
                subject_id=period.id,
                ref=period.ref,
                payouts=len(payouts),
            )
        return PayoutRun(period.ref, PeriodState(period.state), payouts)


def _pay_one(
    ctx: ServiceContext, actor: Actor, claim_id: int, amount: int, sponsored: bool
) -> Payout | None:
    with ctx.transaction() as session:
        claim = session.get_one(Claim, claim_id, with_for_update=True)
        if claim.state != ClaimState.APPROVED:
            return None
        plan = session.get_one(Plan, claim.plan_id)
        period = session.get_one(Period, claim.period_id)
        now = ctx.clock.now()
        key = f"payout:{claim.ref}"
        source = SPONSOR if sponsored else plan_account(plan.code, "aid_pool")
        post(
            session,
            transaction(
                key,
                "payout",
                [Leg(source, -amount), Leg(plan_account(plan.code, "payouts"), amount)],
                memo=f"aid for {claim.ref} to account {claim.claimant_account_id}",
            ),
            at=now,
            plan_id=plan.id,
            period_id=period.id,
            actor_id=actor.recorded_id,
        )
        claim.paid_at = now
        apply_claim_event(
            session,
            claim,
            plan,
            ClaimEvent.PAY,
            actor,
            now,
            public_note=f"{format_yuan(amount, symbol=True, grouping=True)} paid",
        )
        if claim.tier == "severe":
            membership = session.get_one(Membership, claim.membership_id)
            if membership.state in (MembershipState.WAITING, MembershipState.COVERED):
                audit.record(
                    session,
                    at=now,
                    actor_account_id=actor.account_id,
                    action="membership_severe_payout",
                    subject_type="membership",
                    subject_id=membership.id,
                    from_state=membership.state,
                    to_state="ended",
                    claim=claim.ref,
                )
                membership.state = MembershipState.ENDED
                membership.ended_at = now
                membership.end_reason = EndReason.SEVERE_PAYOUT
        return Payout(claim.ref, claim.claimant_account_id, amount, key)


def results_file_text(rows: Iterable[tuple[int, str]]) -> str:
    """A results file as a provider would send it (tests, demo)."""
    buffer = io.StringIO()
    buffer.write(RESULTS_HEADER + "\n")
    for membership, status in rows:
        buffer.write(f"{membership},{status}\n")
    return buffer.getvalue()
