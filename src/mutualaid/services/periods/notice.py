"""The public notice of a period: its figures and the arithmetic anyone can check."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import (
    func,
    select,
)
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Claim,
    LogEntry,
    Membership,
    PeriodBandGroup,
    PeriodChargeException,
    PeriodCohort,
    Person,
)
from mutualaid.db.queries.plans import plan_by_code, rules_of
from mutualaid.domain.apportionment import (
    PeriodState,
    capped_charge,
    reached,
)
from mutualaid.domain.errors import Conflict
from mutualaid.domain.plans import PlanRules
from mutualaid.domain.sharing import Risk, RiskClass, SharingRule
from mutualaid.domain.sharing_bands import fairness_ratios_bp, plan_bands
from mutualaid.services.claims.publicity import PublicCase, public_case
from mutualaid.services.context import ServiceContext
from mutualaid.services.periods.sharing import CAP_ADJUSTED, EXCLUDED, period_bands
from mutualaid.services.periods.views import PeriodView, find_period, view

#: A band the plan's table no longer has: no expected aid, so no fairness ratio.
NO_RISK = Risk(())

# --- the public notice --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArithmeticCheck:
    """One line of "the numbers add up", with both sides so anyone can redo it."""

    name: str
    expression: str
    left: int
    right: int
    holds: bool


@dataclass(frozen=True, slots=True)
class CohortLine:
    cohort_on: date
    member_count: int
    charged_so_far_this_year_fen: int
    charge_fen: int


@dataclass(frozen=True, slots=True)
class PeriodNotice:
    period: PeriodView
    fee_bp: int
    per_case_cap_fen: int | None
    annual_cap_fen: int | None
    cases: list[PublicCase]
    sponsored_cases: list[PublicCase]
    cohorts: list[CohortLine]
    excluded_members: int
    own_charges: int
    own_charges_fen: int
    checks: list[ArithmeticCheck]
    commitment_leaf: str | None
    commitment_leaf_index: int | None
    #: The plan's sharing rule for this period, and under a non-uniform one each age band's share.
    sharing_rule: str = SharingRule.UNIFORM
    bands: list[BandLine] = field(default_factory=list)
    #: Under a non-uniform rule when the annual cap bound: members per cohort and birth interval.
    groups: list[GroupLine] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BandLine:
    """One age band of a period under a non-uniform rule, as the notice shows it."""

    from_age: int
    to_age: int
    #: Born on or before this day: at least `from_age` on publicity day (None: the youngest band).
    born_by_on: date | None
    #: One member's weight, an exact fraction "numerator/denominator".
    weight: str
    member_count: int
    band_total_fen: int
    uncapped_share_fen: int
    share_fen: int
    #: The band's part of the need over its part of the expected aid, in basis points (10,000:
    #: it pays exactly its expected losses' share; `sharing_bands.fairness_ratios_bp`). None: the
    #: band expects no aid, or nothing was shared.
    fairness_ratio_bp: int | None = None


@dataclass(frozen=True, slots=True)
class GroupLine:
    """Members of one cohort born in one interval (after `born_after_on`, on or before
    `born_by_on`; None: open), in band `band_index` now: they have paid the same this year, and
    pay their band's share capped at what the annual cap leaves them."""

    cohort_on: date
    born_after_on: date | None
    born_by_on: date | None
    band_index: int
    member_count: int
    charged_so_far_this_year_fen: int
    charge_fen: int


def group_lines(session: Session, period_id: int) -> list[GroupLine]:
    return [
        GroupLine(
            g.cohort_on,
            g.born_after_on,
            g.born_by_on,
            g.band_index,
            g.member_count,
            g.ytd_fen,
            g.charge_fen,
        )
        for g in session.scalars(
            select(PeriodBandGroup)
            .where(PeriodBandGroup.period_id == period_id)
            .order_by(PeriodBandGroup.cohort_on, PeriodBandGroup.interval_index)
        )
    ]


def band_lines(session: Session, period_id: int, rules: PlanRules) -> list[BandLine]:
    """The period's bands, each with its fairness ratio against the plan's band risks (those of
    the plan version the period was closed under)."""
    rows = period_bands(session, period_id)
    risks = {(band.from_age, band.to_age): band.risk for band in plan_bands(rules)}
    classes = [
        RiskClass(
            f"{b.from_age}-{b.to_age}", b.member_count, risks.get((b.from_age, b.to_age), NO_RISK)
        )
        for b in rows
    ]
    ratios = fairness_ratios_bp(classes, [b.band_total_fen for b in rows])
    return [
        BandLine(
            b.from_age,
            b.to_age,
            b.born_by_on,
            b.weight,
            b.member_count,
            b.band_total_fen,
            b.uncapped_share_fen,
            b.share_fen,
            ratio,
        )
        for b, ratio in zip(rows, ratios, strict=True)
    ]


def period_notice(ctx: ServiceContext, plan_code: str, publicity_on: date) -> PeriodNotice:
    """The public notice of a computed period: every case (anonymised), the figures, the cohorts,
    and the arithmetic that shows the total is exactly aid + fee − surplus carried (+ new surplus,
    − the sponsor's and prorated parts). Needs no login."""
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        period = find_period(session, plan, publicity_on)
        if not reached(PeriodState(period.state), PeriodState.COMPUTED):
            raise Conflict(
                "period_not_computed",
                f"period {period.ref} is still being closed",
                details={"period": period.ref},
            )
        rules = rules_of(session, plan.id, period.plan_version)
        rows = session.execute(
            select(Claim, Person, Membership)
            .join(Person, Person.id == Claim.person_id)
            .join(Membership, Membership.id == Claim.membership_id)
            .where(Claim.period_id == period.id)
            .order_by(Claim.approved_at, Claim.id)
        ).all()
        cases = [public_case(rules, c, p, m) for c, p, m in rows if not c.sponsored]
        sponsored = [public_case(rules, c, p, m) for c, p, m in rows if c.sponsored]
        cohorts = [
            CohortLine(c.cohort_on, c.member_count, c.ytd_fen, c.charge_fen)
            for c in session.scalars(
                select(PeriodCohort)
                .where(PeriodCohort.period_id == period.id)
                .order_by(PeriodCohort.cohort_on)
            )
        ]
        exception_rows = session.execute(
            select(
                PeriodChargeException.kind, func.count(), func.sum(PeriodChargeException.amount_fen)
            )
            .where(PeriodChargeException.period_id == period.id)
            .group_by(PeriodChargeException.kind)
        ).all()
        by_kind = {kind: (int(n), int(total or 0)) for kind, n, total in exception_rows}
        entry = (
            session.get(LogEntry, period.commitment_entry_id)
            if period.commitment_entry_id
            else None
        )
        pv = view(period, plan.code)
        bands = band_lines(session, period.id, rules)
        groups = group_lines(session, period.id) if bands else []
        checks = notice_checks(
            pv,
            cohorts,
            by_kind.get(CAP_ADJUSTED, (0, 0)),
            cases,
            bands,
            groups,
            period.annual_cap_fen,
        )
        return PeriodNotice(
            period=pv,
            fee_bp=period.fee_bp,
            per_case_cap_fen=period.per_case_cap_fen,
            annual_cap_fen=period.annual_cap_fen,
            cases=cases,
            sponsored_cases=sponsored,
            cohorts=cohorts,
            excluded_members=by_kind.get(EXCLUDED, (0, 0))[0],
            own_charges=by_kind.get(CAP_ADJUSTED, (0, 0))[0],
            own_charges_fen=by_kind.get(CAP_ADJUSTED, (0, 0))[1],
            checks=checks,
            commitment_leaf=entry.leaf_data.decode() if entry is not None else None,
            commitment_leaf_index=entry.leaf_index if entry is not None else None,
            sharing_rule=rules.sharing_rule,
            bands=bands,
            groups=groups,
        )


def notice_checks(
    p: PeriodView,
    cohorts: Sequence[CohortLine],
    own: tuple[int, int],
    cases: Sequence[PublicCase],
    bands: Sequence[BandLine] = (),
    groups: Sequence[GroupLine] = (),
    annual_cap_fen: int | None = None,
) -> list[ArithmeticCheck]:
    aid, fee = p.aid_fen or 0, p.fee_fen or 0
    s_in, s_out = p.surplus_in_fen or 0, p.surplus_out_fen or 0
    total, sponsor, prorated = p.total_charged_fen or 0, p.sponsor_fen or 0, p.prorated_fen or 0
    members, share = p.member_count or 0, p.share_fen or 0
    need = aid + fee - s_in
    if cohorts or groups:
        lines = [(c.member_count, c.charge_fen) for c in cohorts] + [
            (g.member_count, g.charge_fen) for g in groups
        ]
        summed = sum(count * charge for count, charge in lines) + own[1]
        counted = sum(count for count, _ in lines) + own[0]
    elif bands:
        summed = sum(b.member_count * b.share_fen for b in bands) + own[1]
        counted = sum(b.member_count for b in bands) + own[0]
    else:
        summed, counted = members * share, members
    checks = [
        ArithmeticCheck(
            "aid",
            "Σ payouts of the shared cases = aid",
            sum(c.payout_fen for c in cases),
            aid,
            sum(c.payout_fen for c in cases) == aid,
        ),
        ArithmeticCheck(
            "charges", "Σ members × charge = total charged", summed, total, summed == total
        ),
        ArithmeticCheck(
            "members", "Σ members of every cohort = members", counted, members, counted == members
        ),
        ArithmeticCheck(
            "balance",
            "total + sponsor + prorated = aid + fee − surplus in + surplus out",
            total + sponsor + prorated,
            aid + fee - s_in + s_out,
            total + sponsor + prorated == aid + fee - s_in + s_out,
        ),
    ]
    if bands:
        return checks + banded_checks(bands, need, groups, annual_cap_fen)
    if members and need > 0:
        uncapped = -(-need // members)
        checks.append(
            ArithmeticCheck(
                "share",
                "uncapped share = ⌈(aid + fee − surplus in) / members⌉",
                p.uncapped_share_fen or 0,
                uncapped,
                (p.uncapped_share_fen or 0) == uncapped,
            )
        )
    return checks


def banded_checks(
    bands: Sequence[BandLine],
    need: int,
    groups: Sequence[GroupLine] = (),
    annual_cap_fen: int | None = None,
) -> list[ArithmeticCheck]:
    """Under a non-uniform rule: the bands' parts add up to the need, each band's share is its
    part over its members, rounded up, and each group pays its band's share capped at what the
    annual cap leaves it."""
    parts = sum(b.band_total_fen for b in bands)
    checks = [
        ArithmeticCheck(
            "bands",
            "Σ band totals = aid + fee − surplus in",
            parts,
            max(need, 0),
            parts == max(need, 0),
        )
    ]
    for band in bands:
        if band.member_count and band.band_total_fen:
            uncapped = -(-band.band_total_fen // band.member_count)
            checks.append(
                ArithmeticCheck(
                    f"share_{band.from_age}_{band.to_age}",
                    f"uncapped share {band.from_age}–{band.to_age} = ⌈band total / band members⌉",
                    band.uncapped_share_fen,
                    uncapped,
                    band.uncapped_share_fen == uncapped,
                )
            )
    if groups:
        charged = sum(g.member_count * g.charge_fen for g in groups)
        capped = sum(
            g.member_count
            * capped_charge(
                bands[g.band_index].share_fen, annual_cap_fen, g.charged_so_far_this_year_fen
            )
            for g in groups
        )
        checks.append(
            ArithmeticCheck(
                "groups",
                "Σ group members × min(band share, annual cap − charged so far) = "
                "Σ group members × charge",
                capped,
                charged,
                capped == charged
                and all(
                    g.charge_fen
                    == capped_charge(
                        bands[g.band_index].share_fen,
                        annual_cap_fen,
                        g.charged_so_far_this_year_fen,
                    )
                    for g in groups
                ),
            )
        )
    return checks
