"""What each payer owes in a period, in payment order, and recording what was not paid.

A payer owes, per period, the sum of the charges of the memberships they pay for. Only a failure is
a row (`collection_failures`, one per unpaid membership): the payer's own share is taken before
family members' shares, family members by joining order; an unpaid membership is suspended until
paid or removed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    CollectionFailure,
    Membership,
    Period,
    PeriodChargeException,
    Person,
)
from mutualaid.domain.apportionment import (
    Due,
    payment_order,
)
from mutualaid.domain.memberships import MembershipEvent, MembershipState, Relation
from mutualaid.services import audit
from mutualaid.services.enrollment.membership_leaves import queue_membership_event
from mutualaid.services.notifications import notify
from mutualaid.services.periods.sharing import EXCLUDED, ChargeRule

# --- what each payer owes ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Owed:
    payer_account_id: int
    amount_fen: int


def payers_owing(session: Session, rule: ChargeRule, after: int, upto: int | None) -> list[Owed]:
    """Each payer in (after, upto] and their total due, exceptions applied."""
    where = [*rule.where(session), Membership.payer_account_id > after]
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
    return [Owed(payer, amount) for payer, amount in sorted(totals.items()) if amount > 0]


def payer_dues(session: Session, rule: ChargeRule, payer: int) -> list[Due]:
    """The payer's charged memberships in this period, in payment order."""
    rows = session.execute(
        select(Membership.id, Membership.joined_at, Person.relation, Person.birth_on)
        .join(Person, Person.id == Membership.person_id)
        # (On SQLite ``plan_id + 0`` leaves the payer index as the only one to use.)
        .where(*rule.where(session), Membership.payer_account_id == payer)
    ).all()
    dues = []
    for membership_id, joined_at, relation, birth_on in rows:
        charge = rule.charge_of(membership_id, joined_at, birth_on)
        if charge:
            dues.append(Due(membership_id, charge, relation == Relation.SELF, joined_at))
    return payment_order(dues)


# --- recording what was not paid ----------------------------------------------------------------


def record_unpaid(
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
            queue_membership_event(
                session,
                at=now,
                plan_ref=period.ref.split("/", 1)[0],  # period_ref: "<plan code>/<date>"
                membership_id=membership.id,
                event=MembershipEvent.SUSPEND,
                state=MembershipState.SUSPENDED,
                occurred_at=now,
            )
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
