"""What closing a period would do, shown to the operator before they confirm: read-only.

The figures come from the same domain function the close uses (`apportion`) over the same cases
and the same sharing members (`periods.sharing_where`), as of now. The close itself may still
differ a little: members suspended for an unpaid share are excluded then, and, once the annual cap
can bind, members are charged by cohort; the preview says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select

from mutualaid.db.models import Claim, Membership, Period
from mutualaid.db.queries.plans import current_rules, plan_by_code
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.apportionment import (
    CapExcess,
    Cohort,
    PeriodFigures,
    PeriodState,
    apportion,
    latest_publicity_day,
    period_dates,
    period_ref,
    reached,
)
from mutualaid.domain.calendars import local_date
from mutualaid.domain.claims import ClaimState
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.periods.sharing import sharing_where


@dataclass(frozen=True, slots=True)
class PeriodPreview:
    ref: str
    publicity_on: date
    debit_on: date
    lock_at: datetime
    locked: bool
    already_closed: bool
    previous_open: str | None
    shared_cases: int
    sponsored_cases: int
    figures: PeriodFigures


def preview_period(
    ctx: ServiceContext, actor: Actor, plan_code: str, on: date | None = None
) -> PeriodPreview:
    require_role(actor.role, Role.OPERATOR, Role.AUDITOR)
    with ctx.reading() as session:
        now = ctx.clock.now()
        plan = plan_by_code(session, plan_code)
        rules = current_rules(session, plan)
        publicity_on = on or latest_publicity_day(rules, local_date(now, rules.zone))
        dates = period_dates(rules, publicity_on)
        existing = session.scalar(
            select(Period).where(Period.plan_id == plan.id, Period.publicity_on == publicity_on)
        )
        previous = session.scalar(
            select(Period)
            .where(Period.plan_id == plan.id, Period.publicity_on < publicity_on)
            .order_by(Period.publicity_on.desc())
            .limit(1)
        )
        previous_open = (
            previous.ref
            if previous is not None
            and not reached(PeriodState(previous.state), PeriodState.COMPUTED)
            else None
        )
        surplus_in = (previous.surplus_out_fen or 0) if previous is not None else 0
        cases = session.execute(
            select(Claim.sponsored, func.count(), func.coalesce(func.sum(Claim.payout_fen), 0))
            .where(
                Claim.plan_id == plan.id,
                Claim.state == ClaimState.APPROVED,
                Claim.approved_at < dates.lock_at,
                Claim.period_id.is_(None),
            )
            .group_by(Claim.sponsored)
        ).all()
        shared, aid, sponsored = 0, 0, 0
        for is_sponsored, count, total in cases:
            if is_sponsored:
                sponsored += int(count)
            else:
                shared, aid = int(count), int(total)
        members = (
            session.scalar(
                select(func.count())
                .select_from(Membership)
                .where(*sharing_where(session, plan.id, dates.lock_at, publicity_on))
            )
            or 0
        )
    figures = apportion(
        aid_fen=aid,
        case_count=shared,
        fee_bp=rules.fees.management_fee_bp,
        surplus_in_fen=surplus_in,
        cohorts=[Cohort("all", members)],
        per_case_cap_fen=rules.caps.per_case_fen,
        annual_cap_fen=rules.caps.annual_fen,
        cap_excess=CapExcess.SPONSOR,
    )
    return PeriodPreview(
        ref=period_ref(plan.code, publicity_on),
        publicity_on=publicity_on,
        debit_on=dates.debit_on,
        lock_at=dates.lock_at,
        locked=dates.lock_at <= now,
        already_closed=existing is not None
        and reached(PeriodState(existing.state), PeriodState.COMPUTED),
        previous_open=previous_open,
        shared_cases=shared,
        sponsored_cases=sponsored,
        figures=figures,
    )
