"""Periods as the API and pages show them: find, get and list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import (
    select,
)
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Period,
    Plan,
)
from mutualaid.db.queries.plans import plan_by_code
from mutualaid.domain.apportionment import (
    PeriodState,
    period_ref,
)
from mutualaid.domain.errors import NotFound
from mutualaid.services.context import ServiceContext

# --- views -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeriodView:
    ref: str
    plan_code: str
    publicity_on: date
    debit_on: date
    lock_at: datetime
    state: PeriodState
    cap_excess: str
    member_count: int | None
    case_count: int | None
    aid_fen: int | None
    sponsored_aid_fen: int | None
    fee_fen: int | None
    surplus_in_fen: int | None
    uncapped_share_fen: int | None
    share_fen: int | None
    total_charged_fen: int | None
    capped_fen: int | None
    sponsor_fen: int | None
    prorated_fen: int | None
    surplus_out_fen: int | None
    charges_root: str | None
    charges_leaves: int | None
    failed_fen: int | None
    #: Why the sponsor paid every share of this period ("promotion"), or None (issue 8).
    sponsored_by: str | None = None


def view(period: Period, plan_code: str) -> PeriodView:
    return PeriodView(
        ref=period.ref,
        plan_code=plan_code,
        publicity_on=period.publicity_on,
        debit_on=period.debit_on,
        lock_at=period.lock_at,
        state=PeriodState(period.state),
        cap_excess=period.cap_excess,
        member_count=period.member_count,
        case_count=period.case_count,
        aid_fen=period.aid_fen,
        sponsored_aid_fen=period.sponsored_aid_fen,
        fee_fen=period.fee_fen,
        surplus_in_fen=period.surplus_in_fen,
        uncapped_share_fen=period.uncapped_share_fen,
        share_fen=period.share_fen,
        total_charged_fen=period.total_charged_fen,
        capped_fen=period.capped_fen,
        sponsor_fen=period.sponsor_fen,
        prorated_fen=period.prorated_fen,
        surplus_out_fen=period.surplus_out_fen,
        charges_root=period.charges_root,
        charges_leaves=period.charges_leaves,
        failed_fen=period.failed_fen,
        sponsored_by=period.sponsored_by,
    )


def find_period(
    session: Session, plan: Plan, publicity_on: date, *, for_update: bool = False
) -> Period:
    query = select(Period).where(Period.plan_id == plan.id, Period.publicity_on == publicity_on)
    if for_update:
        query = query.with_for_update()
    period = session.scalar(query)
    if period is None:
        raise NotFound(
            "period_not_found", f"there is no period {period_ref(plan.code, publicity_on)}", "on"
        )
    return period


def get_period(ctx: ServiceContext, plan_code: str, publicity_on: date) -> PeriodView:
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        return view(find_period(session, plan, publicity_on), plan.code)


def list_periods(ctx: ServiceContext, plan_code: str, *, limit: int = 100) -> list[PeriodView]:
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        rows = session.scalars(
            select(Period)
            .where(Period.plan_id == plan.id)
            .order_by(Period.publicity_on.desc())
            .limit(max(1, min(limit, 500)))
        )
        return [view(p, plan.code) for p in rows]
