"""Operator reports (issue 7): membership flows, cases, shares, time to decision, objections,
juries, investigation cost, and the fairness of each sharing rule by age band.

Every figure is a grouped SQL aggregate (the database buckets by month, illness, age, province…), so
a report reads a few hundred rows whether the plan has a thousand members or a hundred million. One
read-only session gives the whole report a consistent view.

A window ``[from_on, to_on]`` is in the plan's time zone; calendar facts (joined_on, reported_on,
publicity_on) are compared as dates, instants (ended_at, decided_at, filed_at…) from 00:00 of
`from_on` to 00:00 of the day after `to_on`.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, distinct, func, or_, select
from sqlalchemy.orm import Session, aliased

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
from mutualaid.domain.calendars import age_in_years, start_of_day
from mutualaid.domain.claims import ClaimEvent, ClaimState, age_band_label
from mutualaid.domain.errors import DomainError
from mutualaid.domain.identities import PROVINCES
from mutualaid.domain.memberships import MembershipState
from mutualaid.domain.plans import PlanRules, Tier
from mutualaid.domain.sharing import Outcome, Risk, RiskClass, SharingRule, fairness_report
from mutualaid.forecasts.models import ForecastModel, IncidenceRow, default_model
from mutualaid.forecasts.simulation import band_edges
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext

#: Who reads reports: they show money and every case, so the operator's desk and its auditors.
READERS = (Role.OPERATOR, Role.AUDITOR)
#: A claim counts as approved once it has passed publicity.
APPROVED_STATES = (ClaimState.APPROVED, ClaimState.PAID)
#: The plan's own claim history replaces the forecast model's incidence from this many approved
#: cases on (below it, chance dominates the age pattern).
MIN_HISTORY_CASES = 1_000
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
class FairnessBand:
    """Per member and year in an age band: expected aid against expected contribution."""

    band: str  # "30-34" (ages, inclusive)
    members: int
    benefit_fen: int  # expected aid received, rounded to the fen
    contribution_fen: dict[str, int]  # per rule: expected charge, fee included
    ratio: dict[str, float | None]  # per rule: contribution / (benefit × (1 + fee)); 1 is fair


@dataclass(frozen=True, slots=True)
class FairnessReport:
    on: date
    source: str  # "model" (the forecast model's incidence) or "history" (the plan's own cases)
    history_cases: int
    fee_bp: int
    plan_rule: str
    rules: list[str]
    bands: list[FairnessBand]


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

    def instants(self, column: Any) -> ColumnElement[bool]:
        end = column < self.end
        return and_(column >= self.start, end) if self.start else end

    def dates(self, column: Any) -> ColumnElement[bool]:
        end = column <= self.to_on
        return and_(column >= self.from_on, end) if self.from_on else end

    def month_of(self, column: Any) -> ColumnElement[str]:
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
    session: Session, plan_id: int, window: _Window, key: Any
) -> list[tuple[Any, int, int, int]]:
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


# --- fairness -------------------------------------------------------------------------------------


def _row_for(rows: Sequence[IncidenceRow], age: int) -> IncidenceRow:
    for row in rows:
        if row.from_age <= age <= row.to_age:
            return row
    raise DomainError("invalid_model", f"no incidence row covers age {age}", "incidence")


def _band_of(edges: Sequence[int], age: int) -> int | None:
    """The index of the band [edges[i], edges[i + 1]) holding `age`, if any."""
    index = bisect.bisect_right(edges, age) - 1
    return index if 0 <= index < len(edges) - 1 else None


def _probability(rate: float) -> Fraction:
    return Fraction(min(max(rate, 0.0), 1.0)).limit_denominator(10**12)


def _members_by_band(
    session: Session, plan_id: int, edges: Sequence[int], on: date, end: datetime
) -> list[tuple[int, int]]:
    """(men, women) in each band at the end of `on`: one row per birth date and sex."""
    rows = session.execute(
        select(Person.birth_on, Person.sex, func.count())
        .join(Membership, Membership.person_id == Person.id)
        .where(
            Membership.plan_id == plan_id,
            Membership.joined_at < end,
            or_(Membership.ended_at.is_(None), Membership.ended_at >= end),
        )
        .group_by(Person.birth_on, Person.sex)
    ).all()
    counts = [[0, 0] for _ in edges[:-1]]
    for born, sex, count in rows:
        index = _band_of(edges, age_in_years(born, on))
        if index is not None:
            counts[index][0 if sex == "M" else 1] += int(count)
    return [(men, women) for men, women in counts]


def _history(
    session: Session,
    plan_id: int,
    rules: PlanRules,
    edges: Sequence[int],
    members: Sequence[tuple[int, int]],
) -> tuple[int, list[dict[Tier, float]] | None]:
    """Approved cases a year per member in each band, from the plan's own periods and cases.

    Exposure is the member-years the plan's closed periods charged (members × the period's share of
    a year), spread over the bands as today's membership is: an approximation that holds while the
    age mix changes slowly.
    """
    rows = session.execute(
        select(Claim.age_at_diagnosis, Claim.tier, func.count())
        .where(
            Claim.plan_id == plan_id,
            Claim.state.in_([str(s) for s in APPROVED_STATES]),
            Claim.sponsored.is_(False),
        )
        .group_by(Claim.age_at_diagnosis, Claim.tier)
    ).all()
    total_cases = sum(int(n) for _, _, n in rows)
    charged = int(
        session.scalar(
            select(func.coalesce(func.sum(Period.member_count), 0)).where(Period.plan_id == plan_id)
        )
        or 0
    )
    everyone = sum(m + w for m, w in members)
    if total_cases < MIN_HISTORY_CASES or not charged or not everyone:
        return total_cases, None
    member_years = charged / (len(rules.periods.publicity_days) * 12)
    rates: list[dict[Tier, float]] = [{} for _ in members]
    for age, tier, count in rows:
        index = _band_of(edges, int(age))
        exposure = member_years * sum(members[index]) / everyone if index is not None else 0
        if index is not None and exposure:
            rates[index][Tier(tier)] = rates[index].get(Tier(tier), 0.0) + count / exposure
    if any(sum(band.values()) > 1 for band in rates):
        return total_cases, None  # more cases than member-years: too little history to read
    return total_cases, rates


def _fairness(
    session: Session, plan_id: int, rules: PlanRules, window: _Window, model: ForecastModel
) -> FairnessReport:
    edges = band_edges(rules, model)
    members = _members_by_band(session, plan_id, edges, window.to_on, window.end)
    history_cases, history = _history(session, plan_id, rules, edges, members)
    classes: list[RiskClass] = []
    for index, (low, high) in enumerate(itertools.pairwise(edges)):
        men, women = members[index]
        row = _row_for(model.incidence, low)
        outcomes = []
        for tier in (Tier.SEVERE, Tier.MILD):
            payout = rules.payout_fen(low, tier, accident=False)
            if not payout or not any(i.tier == tier for i in rules.illnesses):
                continue
            if history is not None:
                rate = history[index].get(tier, 0.0)
            else:
                male, female = row.severe if tier is Tier.SEVERE else row.mild
                share = men / (men + women) if men + women else 0.5
                rate = (share * male + (1 - share) * female) / 100_000 * model.incidence_level
            probability = _probability(rate)
            if probability:
                outcomes.append(Outcome(int(payout), probability))
        classes.append(RiskClass(f"{low}-{high - 1}", men + women, Risk(tuple(outcomes))))
    fee_bp = rules.fees.management_fee_bp
    rows = fairness_report(classes, fee_bp)
    bands = []
    for fair in rows:
        bands.append(
            FairnessBand(
                band=fair.key,
                members=fair.count,
                benefit_fen=round(fair.benefit_fen),
                contribution_fen={str(r): round(fair.contribution_fen[r]) for r in SharingRule},
                ratio={
                    str(r): None if (x := fair.ratio(r)) is None else round(float(x), 4)
                    for r in SharingRule
                },
            )
        )
    return FairnessReport(
        on=window.to_on,
        source="model" if history is None else "history",
        history_cases=history_cases,
        fee_bp=fee_bp,
        plan_rule=str(rules.sharing_rule),
        rules=[str(r) for r in SharingRule],
        bands=bands,
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
    with ctx.reading() as session:
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
            found["fairness"] = _fairness(session, plan.id, rules, window, model or default_model())
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
