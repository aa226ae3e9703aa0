"""The daily retry of unpaid shares: paid late (reinstated), still failing, or written off.

An unpaid membership is retried daily for the plan's retry days, then removed, and its share
written off to the sponsor.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    CollectionFailure,
    Membership,
    Period,
    Person,
    Plan,
    PrepaidBalance,
    ProviderPayment,
)
from mutualaid.db.queries.plans import current_rules, plan_by_code
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.apportionment import (
    Due,
    payment_order,
)
from mutualaid.domain.calendars import local_date
from mutualaid.domain.errors import DomainError
from mutualaid.domain.ledger import PROVIDER, SPONSOR, Leg, plan_account, transaction
from mutualaid.domain.memberships import EndReason, MembershipEvent, MembershipState, Relation
from mutualaid.domain.plans import FundingModel
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.collections.debits import record_debit
from mutualaid.services.collections.providers import PaymentProvider
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.membership_leaves import MembershipLeaves
from mutualaid.services.ledger.ledger import post
from mutualaid.services.notifications import notify

# --- retries, reinstatement, removal -----------------------------------------------------------------

if TYPE_CHECKING:
    from mutualaid.services.idempotency import UnitOfWork


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
    work: UnitOfWork[None] = ctx.unit_of_work()
    with work as uow:
        session = uow.session
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
        # Their membership events (issue 14), queued together after the loop: one round trip.
        leaves = MembershipLeaves(plan.code)
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
                        session, plan, period, failure, membership, now, actor, leaves
                    )
                    removed += 1
                    continue
                ok = False
                if not blocked:
                    ok = _retry(session, plan, period, failure, provider, prepaid, today, now)
                if ok:
                    paid_late += 1
                    _reinstate_if_clear(session, membership, failure, today, now, leaves)
                else:
                    blocked = True
                    failure.attempts += 1
                    failure.last_attempt_at = now
                    still += 1
        leaves.queue(session, now)
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
        uow.commit(None)
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
    attempt: str | None = None,
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
        if awaiting_provider(session, period.id, payer):
            return False  # a debit the provider has not settled yet: its notification will
        key = f"{period.ref}:{payer}:{failure.membership_id}:retry:{attempt or today.isoformat()}"
        if not record_debit(
            session, provider, period, payer, failure.membership_id, amount, key, now
        ).ok:
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


def pay_failed_share(
    session: Session,
    plan: Plan,
    period: Period,
    failure: CollectionFailure,
    provider: PaymentProvider | None,
    now: datetime,
    attempt: str,
) -> bool:
    """The payer pays one unpaid share now (from the balance of a prepaid plan, else a debit
    through the provider under the key of `attempt`): paid late and the membership reinstated
    when nothing else is unpaid, as by the daily retry. False: not taken (declined, pending)."""
    rules = current_rules(session, plan)
    prepaid = rules.funding_model is FundingModel.PREPAID
    if not prepaid and provider is None:
        raise DomainError(
            "provider_required", "a post-paid plan needs a payment provider", "provider"
        )
    today = local_date(now, rules.zone)
    if not _retry(session, plan, period, failure, provider, prepaid, today, now, attempt):
        failure.attempts += 1
        failure.last_attempt_at = now
        return False
    leaves = MembershipLeaves(plan.code)
    membership = session.get_one(Membership, failure.membership_id)
    _reinstate_if_clear(session, membership, failure, today, now, leaves)
    leaves.queue(session, now)
    return True


def _reinstate_if_clear(
    session: Session,
    membership: Membership,
    failure: CollectionFailure,
    today: date,
    now: datetime,
    leaves: MembershipLeaves,
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
    leaves.add(membership.id, MembershipEvent.REINSTATE, restored, now)
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
    leaves: MembershipLeaves,
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
        leaves.add(membership.id, MembershipEvent.REMOVE, MembershipState.ENDED, now)
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


def settle_late_debit(
    session: Session,
    plan: Plan,
    period: Period,
    payer_account_id: int,
    membership_id: int | None,
    amount_fen: int,
    ledger_key: str,
    memo: str,
    now: datetime,
) -> int:
    """A debit the provider reports paid after it was counted unpaid (a pending or failed debit
    that went through after all): its unpaid shares of `period` are paid late, in payment order,
    and their memberships reinstated; what exceeds them (the shares were meanwhile paid by a
    retry) is owed back to the payer (ledger account plan:P:refunds_due). Posted once under
    `ledger_key`; returns the fen settled against unpaid shares."""
    rows = session.execute(
        select(CollectionFailure, Membership, Person.relation)
        .join(Membership, Membership.id == CollectionFailure.membership_id)
        .join(Person, Person.id == Membership.person_id)
        .where(
            CollectionFailure.period_id == period.id,
            CollectionFailure.payer_account_id == payer_account_id,
            CollectionFailure.status == "retrying",
            *([CollectionFailure.membership_id == membership_id] if membership_id else []),
        )
        .with_for_update(of=CollectionFailure)
    ).all()
    order = {
        d.membership_id: i
        for i, d in enumerate(
            payment_order(
                Due(m.id, f.amount_fen, relation == Relation.SELF, m.joined_at)
                for f, m, relation in rows
            )
        )
    }
    left = amount_fen
    settled: list[tuple[CollectionFailure, Membership]] = []
    for failure, membership, _ in sorted(rows, key=lambda r: order[r[1].id]):
        if failure.amount_fen > left:
            break
        left -= failure.amount_fen
        settled.append((failure, membership))
    paid = amount_fen - left
    legs = [Leg(PROVIDER, -amount_fen)]
    if paid:
        legs.append(Leg(plan_account(plan.code, "members"), paid))
    if left:
        legs.append(Leg(plan_account(plan.code, "refunds_due"), left))
    if (
        post(
            session,
            transaction(ledger_key, "late_payment", legs, memo=memo),
            at=now,
            plan_id=plan.id,
            period_id=period.id,
        )
        is None
    ):
        return 0
    today = local_date(now, current_rules(session, plan).zone)
    leaves = MembershipLeaves(plan.code)
    for failure, membership in settled:
        failure.status = "paid_late"
        failure.resolved_at = now
        failure.last_attempt_at = now
        _reinstate_if_clear(session, membership, failure, today, now, leaves)
    leaves.queue(session, now)
    return paid


def awaiting_provider(session: Session, period_id: int, payer_account_id: int) -> bool:
    """Whether a debit of the payer for the period is still pending at the provider (asking
    again before it settles could take the share twice)."""
    return (
        session.scalar(
            select(ProviderPayment.id).where(
                ProviderPayment.period_id == period_id,
                ProviderPayment.account_id == payer_account_id,
                ProviderPayment.kind == "debit",
                ProviderPayment.status == "pending",
            )
        )
        is not None
    )
