"""What a plan is worth, from live data, for the landing and plan pages: the aid by age, the waiting
period, the illnesses covered, members now, people helped, the last share and the year so far
against the annual cap. Four small queries whatever the member count."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from itertools import pairwise

from sqlalchemy import func, select

from mutualaid.db.models import Claim, Membership, Period
from mutualaid.db.queries.plans import current_rules, plan_by_code
from mutualaid.domain.apportionment import PeriodState, reached
from mutualaid.domain.calendars import local_date
from mutualaid.domain.claims import ClaimState
from mutualaid.domain.memberships import ACTIVE_STATES
from mutualaid.domain.plans import PlanRules, Tier
from mutualaid.services.context import ServiceContext

#: Cases that helped someone: approved (paid after the next collection) or paid.
HELPED_STATES = (ClaimState.APPROVED, ClaimState.PAID)


@dataclass(frozen=True, slots=True)
class AgeBandAid:
    from_age: int
    to_age: int
    severe_fen: int | None
    mild_fen: int | None


@dataclass(frozen=True, slots=True)
class PlanHighlights:
    plan_code: str
    name_zh: str
    name_en: str
    #: The aid for an illness (not an accident) by age at diagnosis, youngest first.
    aid_by_age: tuple[AgeBandAid, ...]
    top_aid_fen: int
    waiting_days: int
    accidents_in_waiting: bool
    illness_count: int
    members: int
    people_helped: int
    aid_approved_fen: int
    #: The share of the last computed period and its publicity day (None: no period yet).
    last_share_fen: int | None
    last_share_on: date | None
    #: The shares of this calendar year's computed periods, capped at the annual cap: what a
    #: member who was in every period of the year has been charged.
    year: int
    year_to_date_fen: int
    annual_cap_fen: int | None


def aid_by_age(rules: PlanRules) -> tuple[AgeBandAid, ...]:
    """One row per age range over which both the severe and the mild aid for an illness stay the
    same (the plan's bands may split ages differently per tier; accident-only bands are left
    out), youngest first."""
    bands = [b for b in rules.payout_bands if b.cause != "accident"]
    bounds = sorted({b.from_age for b in bands} | {b.to_age + 1 for b in bands})
    rows: list[AgeBandAid] = []
    for low, next_low in pairwise(bounds):
        severe = rules.payout_fen(low, Tier.SEVERE, accident=False)
        mild = rules.payout_fen(low, Tier.MILD, accident=False)
        if severe is None and mild is None:
            continue
        last = rows[-1] if rows else None
        if last and (last.severe_fen, last.mild_fen, last.to_age) == (severe, mild, low - 1):
            rows[-1] = AgeBandAid(last.from_age, next_low - 1, severe, mild)
        else:
            rows.append(AgeBandAid(low, next_low - 1, severe, mild))
    return tuple(rows)


def plan_highlights(ctx: ServiceContext, plan_code: str) -> PlanHighlights:
    today = ctx.clock.now()
    with ctx.reading(replica=True) as session:
        plan = plan_by_code(session, plan_code)
        rules = current_rules(session, plan)
        year = local_date(today, rules.zone).year
        members = session.scalar(
            select(func.count()).where(
                Membership.plan_id == plan.id,
                Membership.state.in_([str(s) for s in ACTIVE_STATES]),
            )
        )
        helped, aid = session.execute(
            select(func.count(), func.coalesce(func.sum(Claim.payout_fen), 0)).where(
                Claim.plan_id == plan.id, Claim.state.in_([str(s) for s in HELPED_STATES])
            )
        ).one()
        computed = [str(s) for s in PeriodState if reached(s, PeriodState.COMPUTED)]
        last = session.execute(
            select(Period.share_fen, Period.publicity_on)
            .where(Period.plan_id == plan.id, Period.state.in_(computed))
            .order_by(Period.publicity_on.desc())
            .limit(1)
        ).first()
        year_shares = session.scalar(
            select(func.coalesce(func.sum(Period.share_fen), 0)).where(
                Period.plan_id == plan.id,
                Period.state.in_(computed),
                Period.publicity_on >= date(year, 1, 1),
                Period.publicity_on <= date(year, 12, 31),
            )
        )
    cap = rules.caps.annual_fen
    year_to_date = int(year_shares or 0)
    bands = aid_by_age(rules)
    return PlanHighlights(
        plan_code=plan.code,
        name_zh=plan.name_zh,
        name_en=plan.name_en,
        aid_by_age=bands,
        top_aid_fen=max(band.amount_fen for band in rules.payout_bands),
        waiting_days=rules.waiting_period.days,
        accidents_in_waiting=rules.waiting_period.accidents_covered,
        illness_count=len(rules.illnesses),
        members=int(members or 0),
        people_helped=int(helped),
        aid_approved_fen=int(aid),
        last_share_fen=int(last[0] or 0) if last is not None else None,
        last_share_on=last[1] if last is not None else None,
        year=year,
        year_to_date_fen=min(year_to_date, cap) if cap is not None else year_to_date,
        annual_cap_fen=cap,
    )
