"""Operator reports (issue 7): membership flows, cases, shares, time to decision, objections,
juries, investigation cost, and the fairness of each sharing rule by age band (fairness.py).

Every figure is a grouped SQL aggregate (the database buckets by month, illness, age, province…), so
a report reads a few hundred rows whether the plan has a thousand members or a hundred million. One
read-only session gives the whole report a consistent view.

A window ``[from_on, to_on]`` is in the plan's time zone; calendar facts (joined_on, reported_on,
publicity_on) are compared as dates, instants (ended_at, decided_at, filed_at…) from 00:00 of
`from_on` to 00:00 of the day after `to_on`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, distinct, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from mutualaid.db.models import (
    Claim,
    ClaimEventRow,
    CollectionFailure,
    InvestigationReport,
    Membership,
    Objection,
    Period,
    Person,
    Plan,
)
from mutualaid.db.queries.plans import current_rules, plan_by_code
from mutualaid.db.queries.reports import hours_between, month_of_date, month_of_instant
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.calendars import start_of_day
from mutualaid.domain.claims import ClaimEvent, ClaimState, age_band_label
from mutualaid.domain.errors import DomainError
from mutualaid.domain.identities import PROVINCES
from mutualaid.domain.memberships import MembershipState
from mutualaid.domain.plans import PlanRules
from mutualaid.forecasts.models import ForecastModel, default_model
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.reports.fairness import APPROVED_STATES, FairnessReport, fairness

#: Who reads reports: they show money and every case, so the operator's desk and its auditors.
READERS = (Role.OPERATOR, Role.AUDITOR)
#: Reports span at most this many months (a membership table row per month).
MAX_MONTHS = 240


class Section(StrEnum):
    MEMBERSHIP = "membership"
    CASES = "cases"
    SHARES = "shares"
    DECISIONS = "decisions"
    OBJECTIONS = "objections"
    JURIES = "juries"
    INVESTIGATIONS = "investigations"
    FAIRNESS = "fairness"


ALL_SECTIONS = frozenset(Section)


# --- results --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MembershipMonth:
    month: str  # "2026-03", in the plan's zone
    joined: int
    left: int  # left of their own accord
    ended: int  # ended by the plan: aged out, removed for not paying, after a severe payout
    suspended: int  # a share went unpaid (collection retries began)
    net: int  # joined − left − ended
    active_at_end: int


@dataclass(frozen=True, slots=True)
class CaseGroup:
    key: str
    name_zh: str
    name_en: str
    cases: int  # reported in the window, whatever became of them
    approved: int  # of those, passed publicity (approved or paid)
    payout_fen: int  # aid of the approved ones


@dataclass(frozen=True, slots=True)
class SharePeriod:
    publicity_on: date
    state: str
    members_charged: int | None
    cases: int | None
    aid_fen: int | None
    fee_fen: int | None
    share_per_member_fen: int | None
    total_charged_fen: int | None
    sponsor_fen: int | None


@dataclass(frozen=True, slots=True)
class DecisionTimes:
    """Days from a claim's report to its decision (nearest rank over whole hours)."""

    month: str  # month of the decision; "all" for the whole window
    decided: int
    median_days: float | None
    p90_days: float | None


@dataclass(frozen=True, slots=True)
class ObjectionStats:
    published_cases: int  # cases that entered publicity in the window
    objected_cases: int  # cases with an objection filed in the window
    objections: int
    upheld: int
    dismissed: int
    pending: int
    objection_rate: float | None  # objected / published
    upheld_rate: float | None  # upheld / (upheld + dismissed)


@dataclass(frozen=True, slots=True)
class JuryStats:
    decided_claims: int  # claims decided by staff in the window
    referred_claims: int  # claims sent to a jury in the window
    referred_after_rejection: int  # the member disputed a rejection
    referred_from_publicity: int  # an objection sent a published case to a jury
    referred_by_staff: int  # a reviewer asked the jury instead of deciding
    verdicts: int  # juries that approved or rejected (too few votes is no verdict)
    approved_by_jury: int
    rejected_by_jury: int
    inconclusive: int
    overturned: int  # a rejection approved, or a published approval rejected
    referral_rate: float | None  # referred / decided
    overturn_rate: float | None  # overturned / verdicts on an earlier decision


@dataclass(frozen=True, slots=True)
class InvestigationStats:
    investigated_cases: int
    reports: int
    cost_fen: int
    reports_per_case: float | None
    cost_per_case_fen: int | None  # rounded half up to the fen


@dataclass(frozen=True, slots=True)
class PlanReport:
    plan_code: str
    name_zh: str
    name_en: str
    from_on: date | None
    to_on: date
    time_zone: str
    membership: list[MembershipMonth] | None = None
    cases_by_illness: list[CaseGroup] | None = None
    cases_by_age_band: list[CaseGroup] | None = None
    cases_by_province: list[CaseGroup] | None = None
    shares: list[SharePeriod] | None = None
    decision_times: list[DecisionTimes] | None = None
    objections: ObjectionStats | None = None
    juries: JuryStats | None = None
    investigations: InvestigationStats | None = None
    fairness: FairnessReport | None = None
    sections: list[str] = field(default_factory=list)


# --- the window -----------------------------------------------------------------------------------


#: An instant column, nullable or not.
_Instant = InstrumentedAttribute[datetime] | InstrumentedAttribute[datetime | None]
K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class _Window:
    from_on: date | None
    to_on: date
    zone: ZoneInfo
    dialect: str

    @property
    def start(self) -> datetime | None:
        return start_of_day(self.from_on, self.zone) if self.from_on else None

    @property
    def end(self) -> datetime:
        return start_of_day(self.to_on + timedelta(days=1), self.zone)

    def instants(self, column: _Instant) -> ColumnElement[bool]:
        end = column < self.end
        return and_(column >= self.start, end) if self.start else end

    def dates(self, column: InstrumentedAttribute[date]) -> ColumnElement[bool]:
        end = column <= self.to_on
        return and_(column >= self.from_on, end) if self.from_on else end

    def month_of(self, column: _Instant) -> ColumnElement[str]:
        return month_of_instant(column, self.dialect, self.zone, self.end)


def _months(first: str, last: str) -> list[str]:
    year, month = int(first[:4]), int(first[5:7])
    months: list[str] = []
    while f"{year:04d}-{month:02d}" <= last:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# --- sections -------------------------------------------------------------------------------------


def _membership(session: Session, plan_id: int, window: _Window) -> list[MembershipMonth]:
    joined_month = month_of_date(Membership.joined_on, window.dialect)
    joins = dict(
        session.execute(
            select(joined_month, func.count())
            .where(Membership.plan_id == plan_id, Membership.joined_on <= window.to_on)
            .group_by(joined_month)
        ).all()
    )
    ended_month = window.month_of(Membership.ended_at)
    ends = session.execute(
        select(ended_month, Membership.state, func.count())
        .where(
            Membership.plan_id == plan_id,
            Membership.ended_at.is_not(None),
            Membership.ended_at < window.end,
        )
        .group_by(ended_month, Membership.state)
    ).all()
    suspended_month = window.month_of(CollectionFailure.suspended_at)
    suspensions = dict(
        session.execute(
            select(suspended_month, func.count(distinct(CollectionFailure.membership_id)))
            .join(Membership, Membership.id == CollectionFailure.membership_id)
            .where(
                Membership.plan_id == plan_id,
                CollectionFailure.suspended_at.is_not(None),
                CollectionFailure.suspended_at < window.end,
            )
            .group_by(suspended_month)
        ).all()
    )
    left: Counter[str] = Counter()
    ended: Counter[str] = Counter()
    for month, state, count in ends:
        (left if state == MembershipState.LEFT else ended)[month] += count
    seen = set(joins) | set(left) | set(ended)
    if not seen:
        return []
    first = f"{window.from_on:%Y-%m}" if window.from_on else min(seen)
    last = f"{window.to_on:%Y-%m}"
    months = _months(first, last)[-MAX_MONTHS:]
    active = sum(joins.get(m, 0) - left[m] - ended[m] for m in seen if m < months[0])
    rows: list[MembershipMonth] = []
    for month in months:
        net = joins.get(month, 0) - left[month] - ended[month]
        active += net
        rows.append(
            MembershipMonth(
                month,
                joins.get(month, 0),
                left[month],
                ended[month],
                suspensions.get(month, 0),
                net,
                active,
            )
        )
    return rows


def _case_totals(
    session: Session, plan_id: int, window: _Window, key: InstrumentedAttribute[K]
) -> list[tuple[K, int, int, int]]:
    approved = Claim.state.in_([str(s) for s in APPROVED_STATES])
    query = select(
        key,
        func.count(),
        func.coalesce(func.sum(case((approved, 1), else_=0)), 0),
        func.coalesce(func.sum(case((approved, Claim.payout_fen), else_=0)), 0),
    ).where(Claim.plan_id == plan_id, window.dates(Claim.reported_on))
    if key is Person.province_code:
        query = query.join(Person, Person.id == Claim.person_id)
    rows = session.execute(query.group_by(key)).all()
    return [(k, int(n), int(a), int(aid)) for k, n, a, aid in rows]


def _sorted(groups: Iterable[CaseGroup]) -> list[CaseGroup]:
    return sorted(groups, key=lambda g: (-g.cases, g.key))


def _cases(
    session: Session, plan_id: int, rules: PlanRules, window: _Window
) -> tuple[list[CaseGroup], list[CaseGroup], list[CaseGroup]]:
    illnesses = []
    for code, cases, approved, aid in _case_totals(session, plan_id, window, Claim.illness_code):
        illness = rules.illness(code)
        illnesses.append(
            CaseGroup(
                code,
                illness.name_zh if illness else code,
                illness.name_en if illness else code,
                cases,
                approved,
                aid,
            )
        )
    bands: dict[str, list[int]] = {}
    for age, cases, approved, aid in _case_totals(session, plan_id, window, Claim.age_at_diagnosis):
        totals = bands.setdefault(age_band_label(int(age)), [0, 0, 0])
        for index, value in enumerate((cases, approved, aid)):
            totals[index] += value
    ages = [
        CaseGroup(band, band, band, *totals)
        for band, totals in sorted(bands.items(), key=lambda item: int(item[0].split("-")[0]))
    ]
    provinces = []
    for code, cases, approved, aid in _case_totals(session, plan_id, window, Person.province_code):
        zh, en = PROVINCES.get(code, (code, code))
        provinces.append(CaseGroup(code, zh, en, cases, approved, aid))
    return _sorted(illnesses), ages, _sorted(provinces)


def _shares(session: Session, plan_id: int, window: _Window) -> list[SharePeriod]:
    periods = session.scalars(
        select(Period)
        .where(Period.plan_id == plan_id, window.dates(Period.publicity_on))
        .order_by(Period.publicity_on)
    ).all()
    return [
        SharePeriod(
            p.publicity_on,
            p.state,
            p.member_count,
            p.case_count,
            p.aid_fen,
            p.fee_fen,
            p.share_fen,
            p.total_charged_fen,
            p.sponsor_fen,
        )
        for p in periods
    ]


def nearest_rank(histogram: Sequence[tuple[int, int]], percent: int) -> int | None:
    """The `percent`-th percentile (nearest rank) of values given as sorted (value, count) pairs."""
    total = sum(count for _, count in histogram)
    if not total:
        return None
    rank = max(1, -(-total * percent // 100))  # ceil(total × percent / 100)
    seen = 0
    for value, count in histogram:
        seen += count
        if seen >= rank:
            return value
    return histogram[-1][0]


def _times(month: str, histogram: list[tuple[int, int]]) -> DecisionTimes:
    histogram.sort()
    median, p90 = nearest_rank(histogram, 50), nearest_rank(histogram, 90)
    return DecisionTimes(
        month,
        sum(n for _, n in histogram),
        None if median is None else round(median / 24, 1),
        None if p90 is None else round(p90 / 24, 1),
    )


def _decisions(session: Session, plan_id: int, window: _Window) -> list[DecisionTimes]:
    month = window.month_of(Claim.decided_at)
    hours = hours_between(Claim.reported_at, Claim.decided_at, window.dialect)
    rows = session.execute(
        select(month, hours, func.count())
        .where(
            Claim.plan_id == plan_id,
            Claim.decided_at.is_not(None),
            window.instants(Claim.decided_at),
        )
        .group_by(month, hours)
    ).all()
    by_month: dict[str, list[tuple[int, int]]] = {}
    overall: Counter[int] = Counter()
    for bucket, elapsed, count in rows:
        by_month.setdefault(bucket, []).append((int(elapsed), int(count)))
        overall[int(elapsed)] += int(count)
    times = [_times(m, by_month[m]) for m in sorted(by_month)]
    return [*times, _times("all", list(overall.items()))]


def _objections(session: Session, plan_id: int, window: _Window) -> ObjectionStats:
    published = (
        session.scalar(
            select(func.count(distinct(ClaimEventRow.claim_id)))
            .join(Claim, Claim.id == ClaimEventRow.claim_id)
            .where(
                Claim.plan_id == plan_id,
                ClaimEventRow.to_state == ClaimState.IN_PUBLICITY,
                window.instants(ClaimEventRow.at),
            )
        )
        or 0
    )

    def of_state(state: str) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((Objection.state == state, 1), else_=0)), 0)

    row = session.execute(
        select(
            func.count(distinct(Objection.claim_id)),
            func.count(),
            of_state("upheld"),
            of_state("dismissed"),
            of_state("pending"),
        )
        .join(Claim, Claim.id == Objection.claim_id)
        .where(Claim.plan_id == plan_id, window.instants(Objection.filed_at))
    ).one()
    objected, objections, upheld, dismissed, pending = (int(n) for n in row)
    return ObjectionStats(
        published,
        objected,
        objections,
        upheld,
        dismissed,
        pending,
        _rate(objected, published),
        _rate(upheld, upheld + dismissed),
    )


def _juries(session: Session, plan_id: int, window: _Window) -> JuryStats:
    decided = (
        session.scalar(
            select(func.count())
            .select_from(Claim)
            .where(
                Claim.plan_id == plan_id,
                Claim.decided_at.is_not(None),
                window.instants(Claim.decided_at),
            )
        )
        or 0
    )
    entry = aliased(ClaimEventRow)
    referrals = dict(
        session.execute(
            select(entry.from_state, func.count(distinct(entry.claim_id)))
            .join(Claim, Claim.id == entry.claim_id)
            .where(
                Claim.plan_id == plan_id,
                entry.to_state == ClaimState.JURY_VOTING,
                window.instants(entry.at),
            )
            .group_by(entry.from_state)
        ).all()
    )
    referred = (
        session.scalar(
            select(func.count(distinct(entry.claim_id)))
            .join(Claim, Claim.id == entry.claim_id)
            .where(
                Claim.plan_id == plan_id,
                entry.to_state == ClaimState.JURY_VOTING,
                window.instants(entry.at),
            )
        )
        or 0
    )
    # Each verdict against the state its claim was in when it was sent to this jury.
    verdict = aliased(ClaimEventRow)
    origin = (
        select(entry.from_state)
        .where(
            entry.claim_id == verdict.claim_id,
            entry.to_state == ClaimState.JURY_VOTING,
            entry.id < verdict.id,
        )
        .order_by(entry.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    outcomes = session.execute(
        select(verdict.event, origin, func.count())
        .join(Claim, Claim.id == verdict.claim_id)
        .where(
            Claim.plan_id == plan_id,
            window.instants(verdict.at),
            verdict.event.in_(
                [ClaimEvent.JURY_APPROVES, ClaimEvent.JURY_REJECTS, ClaimEvent.JURY_INCONCLUSIVE]
            ),
        )
        .group_by(verdict.event, origin)
    ).all()
    tally: Counter[str] = Counter()
    overturned = on_decisions = 0
    for event, source, count in outcomes:
        tally[event] += count
        if event == ClaimEvent.JURY_INCONCLUSIVE or source not in (
            ClaimState.REJECTED,
            ClaimState.IN_PUBLICITY,
        ):
            continue
        on_decisions += count
        if (source, event) in (
            (ClaimState.REJECTED, ClaimEvent.JURY_APPROVES),
            (ClaimState.IN_PUBLICITY, ClaimEvent.JURY_REJECTS),
        ):
            overturned += count
    approved, rejected = tally[ClaimEvent.JURY_APPROVES], tally[ClaimEvent.JURY_REJECTS]
    return JuryStats(
        decided_claims=decided,
        referred_claims=referred,
        referred_after_rejection=referrals.get(ClaimState.REJECTED, 0),
        referred_from_publicity=referrals.get(ClaimState.IN_PUBLICITY, 0),
        referred_by_staff=referrals.get(ClaimState.RE_REVIEW, 0),
        verdicts=approved + rejected,
        approved_by_jury=approved,
        rejected_by_jury=rejected,
        inconclusive=tally[ClaimEvent.JURY_INCONCLUSIVE],
        overturned=overturned,
        referral_rate=_rate(referred, decided),
        overturn_rate=_rate(overturned, on_decisions),
    )


def _investigations(session: Session, plan_id: int, window: _Window) -> InvestigationStats:
    row = session.execute(
        select(
            func.count(distinct(InvestigationReport.claim_id)),
            func.count(),
            func.coalesce(func.sum(InvestigationReport.cost_fen), 0),
        )
        .join(Claim, Claim.id == InvestigationReport.claim_id)
        .where(Claim.plan_id == plan_id, window.instants(InvestigationReport.filed_at))
    ).one()
    cases, reports, cost = int(row[0]), int(row[1]), int(row[2])
    return InvestigationStats(
        cases,
        reports,
        cost,
        _rate(reports, cases),
        (2 * cost + cases) // (2 * cases) if cases else None,
    )


# --- the report -----------------------------------------------------------------------------------


def plan_report(
    ctx: ServiceContext,
    actor: Actor,
    plan_code: str,
    *,
    from_on: date | None = None,
    to_on: date | None = None,
    sections: Iterable[Section] = ALL_SECTIONS,
    model: ForecastModel | None = None,
) -> PlanReport:
    """The plan's report over [from_on, to_on] (default: from its first day to today)."""
    require_role(actor.role, *READERS)
    wanted = frozenset(sections)
    with ctx.reading(replica=True) as session:
        plan: Plan = plan_by_code(session, plan_code)
        rules = current_rules(session, plan)
        zone = rules.zone
        to_on = to_on or ctx.clock.now().astimezone(zone).date()
        if from_on and from_on > to_on:
            raise DomainError(
                "invalid_window", "the report's first day is after its last day", "from_on"
            )
        window = _Window(from_on, to_on, zone, session.get_bind().dialect.name)
        found: dict[str, Any] = {}
        if Section.MEMBERSHIP in wanted:
            found["membership"] = _membership(session, plan.id, window)
        if Section.CASES in wanted:
            (found["cases_by_illness"], found["cases_by_age_band"], found["cases_by_province"]) = (
                _cases(session, plan.id, rules, window)
            )
        if Section.SHARES in wanted:
            found["shares"] = _shares(session, plan.id, window)
        if Section.DECISIONS in wanted:
            found["decision_times"] = _decisions(session, plan.id, window)
        if Section.OBJECTIONS in wanted:
            found["objections"] = _objections(session, plan.id, window)
        if Section.JURIES in wanted:
            found["juries"] = _juries(session, plan.id, window)
        if Section.INVESTIGATIONS in wanted:
            found["investigations"] = _investigations(session, plan.id, window)
        if Section.FAIRNESS in wanted:
            found["fairness"] = fairness(
                session, plan.id, rules, window.to_on, window.end, model or default_model()
            )
    return PlanReport(
        plan_code=plan.code,
        name_zh=plan.name_zh,
        name_en=plan.name_en,
        from_on=from_on,
        to_on=to_on,
        time_zone=rules.time_zone,
        sections=[str(s) for s in Section if s in wanted],
        **found,
    )
