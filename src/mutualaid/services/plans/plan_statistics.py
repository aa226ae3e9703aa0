"""Plan statistics for the public page and the operators' dashboard, by grouped SQL (a handful of
rows whatever the member count)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select

from mutualaid.db.models import Claim, InvestigationReport, JuryCase, Membership, Objection
from mutualaid.db.queries.plans import current_rules, plan_by_code
from mutualaid.domain.accounts import STAFF_ROLES
from mutualaid.domain.claims import ClaimState, age_band_label
from mutualaid.domain.errors import Forbidden
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext

#: Cases the public has seen: published for objections, or decided after it.
PUBLISHED_STATES = (ClaimState.IN_PUBLICITY, ClaimState.APPROVED, ClaimState.PAID)


@dataclass(frozen=True, slots=True)
class MonthOfMembers:
    month: str  # "2026-03"
    joined: int
    ended: int
    members_at_end: int


@dataclass(frozen=True, slots=True)
class CaseCount:
    key: str
    name_zh: str
    name_en: str
    cases: int
    aid_fen: int


@dataclass(frozen=True, slots=True)
class PlanStatistics:
    plan_code: str
    members_by_month: list[MonthOfMembers]
    cases_by_illness: list[CaseCount]
    cases_by_age_band: list[CaseCount]
    published_cases: int
    published_aid_fen: int


def _month(value: object) -> str:
    return str(value)[:7]


def plan_statistics(ctx: ServiceContext, plan_code: str, *, months: int = 24) -> PlanStatistics:
    with ctx.reading(replica=True) as session:
        plan = plan_by_code(session, plan_code)
        rules = current_rules(session, plan)
        joins = session.execute(
            select(Membership.joined_on, func.count())
            .where(Membership.plan_id == plan.id)
            .group_by(Membership.joined_on)
        ).all()
        ended_on = func.date(Membership.ended_at)
        ends = session.execute(
            select(ended_on, func.count())
            .where(Membership.plan_id == plan.id, Membership.ended_at.is_not(None))
            .group_by(ended_on)
        ).all()
        published = [str(s) for s in PUBLISHED_STATES]
        by_illness = session.execute(
            select(Claim.illness_code, func.count(), func.coalesce(func.sum(Claim.payout_fen), 0))
            .where(Claim.plan_id == plan.id, Claim.state.in_(published))
            .group_by(Claim.illness_code)
        ).all()
        by_age = session.execute(
            select(
                Claim.age_at_diagnosis, func.count(), func.coalesce(func.sum(Claim.payout_fen), 0)
            )
            .where(Claim.plan_id == plan.id, Claim.state.in_(published))
            .group_by(Claim.age_at_diagnosis)
        ).all()
    joined: Counter[str] = Counter()
    ended: Counter[str] = Counter()
    for day, count in joins:
        joined[_month(day)] += int(count)
    for day, count in ends:
        ended[_month(day)] += int(count)
    timeline: list[MonthOfMembers] = []
    running = 0
    for month in sorted(set(joined) | set(ended)):
        running += joined[month] - ended[month]
        timeline.append(MonthOfMembers(month, joined[month], ended[month], running))
    illnesses = []
    for code, count, aid in sorted(by_illness, key=lambda row: (-row[1], row[0])):
        illness = rules.illness(code)
        illnesses.append(
            CaseCount(
                code,
                illness.name_zh if illness else code,
                illness.name_en if illness else code,
                int(count),
                int(aid),
            )
        )
    bands: dict[str, list[int]] = {}
    for age, count, aid in by_age:
        totals = bands.setdefault(age_band_label(int(age)), [0, 0])
        totals[0] += int(count)
        totals[1] += int(aid)
    ages = [
        CaseCount(band, band, band, n, aid)
        for band, (n, aid) in sorted(bands.items(), key=lambda item: int(item[0].split("-")[0]))
    ]
    return PlanStatistics(
        plan_code=plan.code,
        members_by_month=timeline[-months:],
        cases_by_illness=illnesses,
        cases_by_age_band=ages,
        published_cases=sum(c.cases for c in illnesses),
        published_aid_fen=sum(c.aid_fen for c in illnesses),
    )


@dataclass(frozen=True, slots=True)
class OperatorDashboard:
    plan_code: str
    members_by_state: dict[str, int]
    claims_by_state: dict[str, int]
    approved_aid_fen: int
    investigation_cost_fen: int
    pending_objections: int
    open_juries: int


def operator_dashboard(ctx: ServiceContext, actor: Actor, plan_code: str) -> OperatorDashboard:
    if actor.role not in STAFF_ROLES:
        raise Forbidden("forbidden", "dashboards are for staff", details={"variant": "staff"})
    with ctx.reading(replica=True) as session:
        plan = plan_by_code(session, plan_code)
        members = dict(
            session.execute(
                select(Membership.state, func.count())
                .where(Membership.plan_id == plan.id)
                .group_by(Membership.state)
            ).all()
        )
        claims = dict(
            session.execute(
                select(Claim.state, func.count())
                .where(Claim.plan_id == plan.id)
                .group_by(Claim.state)
            ).all()
        )
        approved = (
            session.scalar(
                select(func.coalesce(func.sum(Claim.payout_fen), 0)).where(
                    Claim.plan_id == plan.id,
                    Claim.state.in_([ClaimState.APPROVED, ClaimState.PAID]),
                )
            )
            or 0
        )
        cost = (
            session.scalar(
                select(func.coalesce(func.sum(InvestigationReport.cost_fen), 0))
                .join(Claim, Claim.id == InvestigationReport.claim_id)
                .where(Claim.plan_id == plan.id)
            )
            or 0
        )
        objections = (
            session.scalar(
                select(func.count())
                .select_from(Objection)
                .join(Claim, Claim.id == Objection.claim_id)
                .where(Claim.plan_id == plan.id, Objection.state == "pending")
            )
            or 0
        )
        juries = (
            session.scalar(
                select(func.count())
                .select_from(JuryCase)
                .join(Claim, Claim.id == JuryCase.claim_id)
                .where(Claim.plan_id == plan.id, JuryCase.status != "closed")
            )
            or 0
        )
    return OperatorDashboard(
        plan.code,
        {str(k): int(v) for k, v in members.items()},
        {str(k): int(v) for k, v in claims.items()},
        int(approved),
        int(cost),
        int(objections),
        int(juries),
    )
