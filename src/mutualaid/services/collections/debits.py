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

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    CollectionFailure,
    Period,
    Plan,
    ProviderPayment,
)
from mutualaid.db.queries.collections import next_payer_bound
from mutualaid.db.queries.plans import current_rules, plan_by_code, rules_of
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.apportionment import (
    Due,
    PeriodState,
    reached,
)
from mutualaid.domain.calendars import local_date
from mutualaid.domain.errors import Conflict, DomainError
from mutualaid.domain.ledger import PROVIDER, Leg, plan_account, transaction
from mutualaid.domain.plans import FundingModel
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.collections.dues import Owed, payer_dues, payers_owing, record_unpaid
from mutualaid.services.collections.prepaid import balances_in_range, deduct
from mutualaid.services.collections.providers import DebitResult, PaymentProvider
from mutualaid.services.context import ServiceContext
from mutualaid.services.ledger.ledger import post
from mutualaid.services.notifications import notify
from mutualaid.services.periods.sharing import ChargeRule, charge_rule
from mutualaid.services.periods.views import find_period

if TYPE_CHECKING:
    from mutualaid.services.idempotency import UnitOfWork

#: Called with (memberships done, memberships in all) during long runs.
Progress = Callable[[int, int], None]
DEFAULT_CHUNK = 2_000


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


def start_collecting(
    ctx: ServiceContext, plan_code: str, publicity_on: date, *, by_file: bool
) -> Period | None:
    """committed -> collecting; None when collection is already finished. A period is collected
    either through a provider or through a file, never both."""
    work: UnitOfWork[Period | None] = ctx.unit_of_work()
    with work as uow:
        session = uow.session
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
            raise Conflict(
                "period_not_committed",
                f"close period {period.ref} first",
                details={"period": period.ref},
            )
        elif (period.collect_cursor == FILE_MODE) != by_file:
            raise Conflict(
                "collection_in_progress",
                f"period {period.ref} is being collected "
                f"{'through a results file' if not by_file else 'through a provider'}",
            )
        uow.commit(period)
    return uow.result


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
    started = start_collecting(ctx, plan_code, publicity_on, by_file=False)
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
        work: UnitOfWork[None] = ctx.unit_of_work()
        with work as uow:
            session = uow.session
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
            bound = next_payer_bound(session, plan.id, after, chunk)
            owed = payers_owing(session, rule, after, bound)
            balances = balances_in_range(session, plan.id, after, bound) if prepaid else {}
            chunk_collected = chunk_failed = 0
            low: list[tuple[int, int, int]] = []
            for item in owed:
                if prepaid:
                    paid, unpaid = deduct(session, rule, plan.id, item, balances, now)
                    left = balances.get(item.payer_account_id, 0)
                    if left < item.amount_fen:
                        low.append((item.payer_account_id, left, item.amount_fen))
                else:
                    assert provider is not None
                    paid, unpaid = _debit(session, rule, provider, period, item, now)
                chunk_collected += paid
                chunk_failed += record_unpaid(
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
            uow.commit(None)
        done += chunk
        if progress:
            progress(done, started.member_count or 0)
        if hook:
            hook("chunk_committed")
        if bound is None:
            break
    return CollectionRun(started.ref, PeriodState.COLLECTED, asked, collected, failed)


def _debit(
    session: Session,
    rule: ChargeRule,
    provider: PaymentProvider,
    period: Period,
    item: Owed,
    now: datetime,
) -> tuple[int, list[Due]]:
    """One debit for the payer's total; if refused, share by share in payment order. A debit the
    provider has neither paid nor refused (pending) is not split: its notification settles it."""
    payer = item.payer_account_id
    total = record_debit(
        session, provider, period, payer, None, item.amount_fen, f"{period.ref}:{payer}", now
    )
    if total.ok:
        return item.amount_fen, []
    dues = payer_dues(session, rule, payer)
    if total.pending:
        return 0, dues
    paid = 0
    for position, due in enumerate(dues):
        key = f"{period.ref}:{payer}:{due.membership_id}"
        share = record_debit(
            session, provider, period, payer, due.membership_id, due.charge_fen, key, now
        )
        if not share.ok:
            return paid, dues[position:]
        paid += due.charge_fen
    return paid, []


def record_debit(
    session: Session,
    provider: PaymentProvider,
    period: Period,
    payer: int,
    membership_id: int | None,
    amount_fen: int,
    key: str,
    now: datetime,
) -> DebitResult:
    """Ask the provider for one debit; a provider that names it (out_ref) gets it recorded, once,
    with its reference and status, for its notifications and its statement."""
    result = provider.debit(payer, amount_fen, key)
    if result.out_ref is None:
        return result
    row = session.scalar(
        select(ProviderPayment).where(
            ProviderPayment.provider == provider.name, ProviderPayment.key == key
        )
    )
    status = "paid" if result.ok else "pending" if result.pending else "failed"
    if row is None:
        session.add(
            ProviderPayment(
                provider=provider.name,
                kind="debit",
                key=key,
                out_ref=result.out_ref,
                provider_ref=result.reference,
                amount_fen=amount_fen,
                status=status,
                account_id=payer,
                period_id=period.id,
                membership_id=membership_id,
                created_at=now,
                settled_at=now if result.ok else None,
            )
        )
        session.flush()
    elif row.status != "paid":
        row.status = status
        row.provider_ref = row.provider_ref or result.reference
        row.settled_at = now if result.ok else None
    return result


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
