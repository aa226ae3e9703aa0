"""Public notices by publicity day: every case published that day, anonymised, with its totals.

The current notice is `services.claims.cases_in_publicity`; this adds the past ones (cases whose
publicity has closed, kept under the day they were published).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select

from mutualaid.db.models import Claim, Membership, Person
from mutualaid.db.queries.plans import plan_by_code, rules_of
from mutualaid.domain.claims import ClaimState
from mutualaid.domain.money import apply_basis_points
from mutualaid.services.claims.publicity import PublicCase, public_case
from mutualaid.services.context import ServiceContext

#: States of a case that was published (and not sent back by an upheld objection).
NOTICE_STATES = (
    ClaimState.IN_PUBLICITY,
    ClaimState.APPROVED,
    ClaimState.PAID,
    ClaimState.JURY_VOTING,
)


@dataclass(frozen=True, slots=True)
class NoticeDay:
    published_on: date
    cases: int
    aid_fen: int


@dataclass(frozen=True, slots=True)
class Notice:
    plan_code: str
    published_on: date
    cases: list[PublicCase]
    aid_fen: int
    #: The management fee on these cases at the plan's rate (what the period will add to the aid).
    fee_fen: int


def notice_days(ctx: ServiceContext, plan_code: str, *, limit: int = 24) -> list[NoticeDay]:
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        rows = session.execute(
            select(Claim.publicity_on, func.count(), func.coalesce(func.sum(Claim.payout_fen), 0))
            .where(
                Claim.plan_id == plan.id,
                Claim.publicity_on.is_not(None),
                Claim.state.in_([str(s) for s in NOTICE_STATES]),
            )
            .group_by(Claim.publicity_on)
            .order_by(Claim.publicity_on.desc())
            .limit(limit)
        ).all()
    return [NoticeDay(day, int(n), int(aid)) for day, n, aid in rows if day is not None]


def notice_of(ctx: ServiceContext, plan_code: str, published_on: date) -> Notice:
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        rows = session.execute(
            select(Claim, Person, Membership)
            .join(Person, Person.id == Claim.person_id)
            .join(Membership, Membership.id == Claim.membership_id)
            .where(
                Claim.plan_id == plan.id,
                Claim.publicity_on == published_on,
                Claim.state.in_([str(s) for s in NOTICE_STATES]),
            )
            .order_by(Claim.id)
        ).all()
        cases = [
            public_case(rules_of(session, plan.id, c.plan_version), c, p, m) for c, p, m in rows
        ]
        fee_bp = rules_of(session, plan.id, plan.current_version).fees.management_fee_bp
    aid = sum(c.payout_fen for c in cases)
    return Notice(plan.code, published_on, cases, aid, apply_basis_points(aid, fee_bp))
