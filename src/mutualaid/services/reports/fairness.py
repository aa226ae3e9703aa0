"""The fairness section of a plan report: per age band, what a member can expect to receive
against what each sharing rule charges them (issue 7).

Incidence comes from the forecast model, or from the plan's own approved cases once it has enough
of them. Members are counted by one grouped read (a row per birth date and sex).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from mutualaid.db.models import Claim, Membership, Period, Person
from mutualaid.domain.calendars import age_in_years
from mutualaid.domain.claims import ClaimState
from mutualaid.domain.errors import DomainError
from mutualaid.domain.plans import PlanRules, Tier
from mutualaid.domain.sharing import Outcome, Risk, RiskClass, SharingRule, fairness_report
from mutualaid.forecasts.models import ForecastModel, IncidenceRow
from mutualaid.forecasts.simulation import band_edges

#: A claim counts as approved once it has passed publicity.
APPROVED_STATES = (ClaimState.APPROVED, ClaimState.PAID)
#: The plan's own claim history replaces the forecast model's incidence from this many approved
#: cases on (below it, chance dominates the age pattern).
MIN_HISTORY_CASES = 1_000


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


def fairness(
    session: Session, plan_id: int, rules: PlanRules, on: date, end: datetime, model: ForecastModel
) -> FairnessReport:
    """Each sharing rule's fairness by age band at the end of `on` (`end`: 00:00 the day after)."""
    edges = band_edges(rules, model)
    members = _members_by_band(session, plan_id, edges, on, end)
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
        on=on,
        source="model" if history is None else "history",
        history_cases=history_cases,
        fee_bp=fee_bp,
        plan_rule=str(rules.sharing_rule),
        rules=[str(r) for r in SharingRule],
        bands=bands,
    )
