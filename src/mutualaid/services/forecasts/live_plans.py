"""A plan's state today, for a forecast that starts from it (docs/forecasts.md, "A live plan")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import extract, func, select
from sqlalchemy.orm import Session

from mutualaid.db.models import Claim, Membership, Period, Person
from mutualaid.db.queries.plans import current_rules, plan_by_code
from mutualaid.domain.calendars import local_date, start_of_day
from mutualaid.domain.memberships import ACTIVE_STATES, EndReason
from mutualaid.domain.plans import PlanRules
from mutualaid.forecasts.models import ForecastModel
from mutualaid.forecasts.starting_points import (
    MemberGroup,
    PlanToday,
    StartingPoint,
    live_model,
    starting_point,
)
from mutualaid.services.context import ServiceContext

#: How far back the observed claim, leaving and joining rates look (or since the first join).
WINDOW_DAYS = 365
#: Leaving that the model's leaving rate describes (ageing out and severe payouts it models itself).
LEAVING = (EndReason.LEFT, EndReason.REMOVED_UNPAID)


@dataclass(frozen=True, slots=True)
class LiveForecastInputs:
    today: PlanToday
    model: ForecastModel
    start: StartingPoint


def _groups(session: Session, plan_id: int, joined_since: date | None) -> tuple[MemberGroup, ...]:
    joined_year = extract("year", Membership.joined_on)
    joined_month = extract("month", Membership.joined_on)
    birth_year = extract("year", Person.birth_on)
    query = (
        select(joined_year, joined_month, Person.sex, birth_year, func.count())
        .join(Person, Person.id == Membership.person_id)
        .where(Membership.plan_id == plan_id)
        .group_by(joined_year, joined_month, Person.sex, birth_year)
    )
    if joined_since is None:
        query = query.where(Membership.state.in_([str(s) for s in ACTIVE_STATES]))
    else:
        query = query.where(Membership.joined_on >= joined_since)
    return tuple(
        MemberGroup(date(int(year), int(month), 1), sex, int(born), int(count))
        for year, month, sex, born, count in session.execute(query)
    )


def plan_today(ctx: ServiceContext, code: str) -> tuple[PlanRules, PlanToday]:
    """The plan's members, recent experience and money today (the plan's own calendar day)."""
    with ctx.reading(replica=True) as session:
        plan = plan_by_code(session, code)
        rules = current_rules(session, plan)
        today = local_date(ctx.clock.now(), rules.zone)
        first_join = session.scalar(
            select(func.min(Membership.joined_on)).where(Membership.plan_id == plan.id)
        )
        window = min(WINDOW_DAYS, max((today - first_join).days, 1) if first_join else 1)
        since_on = today - timedelta(days=window)
        since_at = start_of_day(since_on, rules.zone)
        cases = session.scalar(
            select(func.count())
            .select_from(Claim)
            .where(Claim.plan_id == plan.id, Claim.approved_at >= since_at)
        )
        leavers = session.scalar(
            select(func.count())
            .select_from(Membership)
            .where(
                Membership.plan_id == plan.id,
                Membership.ended_at >= since_at,
                Membership.end_reason.in_([str(r) for r in LEAVING]),
            )
        )
        surplus = session.scalar(
            select(Period.surplus_out_fen)
            .where(Period.plan_id == plan.id, Period.surplus_out_fen.is_not(None))
            .order_by(Period.publicity_on.desc())
            .limit(1)
        )
        shares = session.execute(
            select(Period.publicity_on, Period.share_fen).where(
                Period.plan_id == plan.id,
                Period.publicity_on >= date(today.year, 1, 1),
                Period.share_fen.is_not(None),
            )
        ).all()
        state = PlanToday(
            today=today,
            members=_groups(session, plan.id, None),
            recent_joiners=_groups(session, plan.id, since_on),
            window_days=window,
            observed_cases=int(cases or 0),
            observed_leavers=int(leavers or 0),
            surplus_fen=int(surplus or 0),
            shares_this_year=tuple((day, int(share or 0)) for day, share in shares),
        )
        return rules, state


def live_forecast_inputs(
    ctx: ServiceContext, code: str, base: ForecastModel
) -> tuple[PlanRules, LiveForecastInputs]:
    """The model and starting point of a forecast of plan `code` from today."""
    rules, today = plan_today(ctx, code)
    model = live_model(base, today, rules)
    return rules, LiveForecastInputs(today, model, starting_point(base, today, rules))
