"""Sharing by age band within a real period: the bands' birth-date cuts, each band's weight under
the non-uniform rules (the conditional mean exact at any pool size, `sharing_lattice.py`),
the shares in fen, and the annual cap when members are charged by band.

The rules themselves, exact distributions and the fairness report are in `sharing.py`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

from mutualaid.domain.apportionment import CapExcess, CohortCharge, PeriodFigures, capped_charge
from mutualaid.domain.errors import DomainError
from mutualaid.domain.money import BASIS_POINTS, Fen, apply_basis_points
from mutualaid.domain.plans import PlanRules, Tier
from mutualaid.domain.sharing import (
    Outcome,
    Risk,
    RiskClass,
    SharingRule,
    allocate_by_weights,
    class_conditional_means,
    class_weights,
)
from mutualaid.domain.sharing_lattice import lattice_conditional_means

# --- age bands of a period (apportionment under the proportional and conditional mean rules) ------

#: Approved claims per 1,000,000 member-years by age band, (from_age, to_age, severe, mild): the
#: default forecast model's mature rates (mean of both sexes × its incidence level), used when a
#: plan has no ``[[sharing_bands]]`` table. Kept here, not read from `mutualaid.forecasts`, so the
#: domain stays free of the simulator.
DEFAULT_BAND_RATES: tuple[tuple[int, int, int, int], ...] = (
    (0, 4, 126, 12),
    (5, 9, 75, 12),
    (10, 14, 86, 17),
    (15, 19, 109, 23),
    (20, 24, 161, 75),
    (25, 29, 270, 144),
    (30, 34, 443, 201),
    (35, 39, 690, 218),
    (40, 44, 1150, 224),
    (45, 49, 1811, 201),
    (50, 54, 2702, 167),
    (55, 59, 3852, 126),
    (60, 64, 5405, 80),
    (65, 69, 7590, 80),
    (70, 74, 10465, 80),
    (75, 79, 13800, 80),
    (80, 130, 17250, 80),
)
PER_MILLION = 1_000_000
#: Pools up to this many members get the conditional mean in rational arithmetic; larger ones the
#: lattice computation (`sharing_lattice.py`), which agrees with it to within 10^-9 of the aid.
EXACT_POOL_LIMIT = 64


@dataclass(frozen=True, slots=True)
class AgeBand:
    """Members whose age at the period's lock date is in [from_age, to_age] (the first band also
    takes anyone younger, the last anyone older), with the band's risk in one period."""

    from_age: int
    to_age: int
    risk: Risk

    @property
    def key(self) -> str:
        return f"{self.from_age}-{self.to_age}"


def band_cuts(on: date, from_ages: Sequence[int]) -> list[date]:
    """Birth dates separating the bands on day `on` (day of month ≤ 28): a member born on or before
    ``cuts[i]`` is at least ``from_ages[i + 1]`` years old on `on` (as `calendars.age_in_years`
    counts, 29 February birthdays included). Descending dates, one fewer than the bands."""
    return [on.replace(year=on.year - age) for age in from_ages[1:]]


def band_index(birth_on: date, cuts: Sequence[date]) -> int:
    """Which band a member born on `birth_on` is in, given `band_cuts`."""
    return sum(1 for cut in cuts if birth_on <= cut)


def banded_weights(
    rule: SharingRule,
    classes: Sequence[RiskClass],
    realised_fen: int,
    class_aid_fen: Sequence[int] | None = None,
) -> list[Fraction]:
    """The weight of one member of each band. The conditional mean is exact at any pool size when
    the realised aid can arise from the bands' risks (rational arithmetic for small pools, the
    payouts' lattice for large ones). A total these risks cannot produce (a payout outside the
    band table, more aid than every member claiming at once) has no conditional mean: there its
    best linear approximation, the covariance-based linear rule, is used instead (exact too)."""
    if rule is SharingRule.CONDITIONAL_MEAN and realised_fen > 0:
        exact = (
            class_conditional_means
            if sum(c.count for c in classes) <= EXACT_POOL_LIMIT
            else lattice_conditional_means
        )
        try:
            return exact(classes, realised_fen)
        except DomainError:
            return class_weights(SharingRule.LINEAR_COVARIANCE, classes, realised_fen)
    if rule is SharingRule.CONDITIONAL_MEAN:
        return [c.risk.expected_fen for c in classes]
    return class_weights(rule, classes, realised_fen, class_aid_fen)


def fairness_ratios_bp(
    classes: Sequence[RiskClass], band_totals_fen: Sequence[int]
) -> list[int | None]:
    """Each band's fairness ratio in basis points: its part of the need over its part of the
    expected aid, ``(T_b / Σ T) / (n_b E[X_b] / E[S])`` × 10,000 (half up): 10,000 is fair, above
    it the band pays more than its expected losses' share. None where the band expects no aid or
    nothing is shared."""
    expected = [c.count * c.risk.expected_fen for c in classes]
    total_expected = sum(expected, Fraction(0))
    need = sum(band_totals_fen)
    result: list[int | None] = []
    for part, band_total in zip(expected, band_totals_fen, strict=True):
        if not part or not need:
            result.append(None)
            continue
        ratio = Fraction(band_total, need) / (part / total_expected) * BASIS_POINTS
        result.append(math.floor(ratio + Fraction(1, 2)))
    return result


@dataclass(frozen=True, slots=True)
class BandShare:
    """One age band of a period: its weight per member, what the band owes in all (the exact
    split of the need), and the share each of its members pays (rounded up, then capped)."""

    key: str
    from_age: int
    to_age: int
    member_count: int
    weight: Fraction
    band_total_fen: int
    uncapped_share_fen: int
    share_fen: int
    #: `fairness_ratios_bp`: the band's part of the need over its part of the expected aid.
    fairness_ratio_bp: int | None = None


def band_shares(
    rule: SharingRule,
    need_fen: int,
    classes: Sequence[RiskClass],
    bands: Sequence[AgeBand],
    realised_fen: int,
    share_cap_fen: int | None,
    class_aid_fen: Sequence[int] | None = None,
) -> list[BandShare]:
    """Split the need among the bands (`class_totals`-style, largest remainder, Σ == need), then
    each band's part uniformly over its members, rounded up to the fen (the over-collection is
    carried, as under the uniform rule) and capped at `share_cap_fen` (cases × per-case cap)."""
    weights = (
        banded_weights(rule, classes, realised_fen, class_aid_fen)
        if need_fen > 0
        else [Fraction(0)] * len(classes)
    )
    weighted = [w * c.count for w, c in zip(weights, classes, strict=True)]
    if need_fen > 0 and not any(weighted):
        # Nobody carries a risk under this table (all rates 0): the members share it evenly.
        weights = [Fraction(1)] * len(classes)
        weighted = [Fraction(c.count) for c in classes]
    totals = (
        allocate_by_weights(need_fen, weighted, [c.key for c in classes])
        if need_fen > 0 and any(weighted)
        else [Fen(0)] * len(classes)
    )
    result = []
    fairness = fairness_ratios_bp(classes, totals)
    for band, risk_class, weight, total, ratio in zip(
        bands, classes, weights, totals, fairness, strict=True
    ):
        uncapped = -(-total // risk_class.count) if risk_class.count and total > 0 else 0
        share = uncapped if share_cap_fen is None else min(uncapped, share_cap_fen)
        result.append(
            BandShare(
                band.key,
                band.from_age,
                band.to_age,
                risk_class.count,
                weight,
                total,
                uncapped,
                share,
                ratio,
            )
        )
    return result


def plan_bands(rules: PlanRules) -> list[AgeBand]:
    """The plan's age bands (its ``[[sharing_bands]]``, else `DEFAULT_BAND_RATES`) up to its exit
    age, each with its risk in one period: the plan's payout for the band's ages, with the
    band's yearly rate spread over the plan's periods (12 × publicity days a year)."""
    table = (
        [
            (b.from_age, b.to_age, b.severe_per_million, b.mild_per_million)
            for b in rules.sharing_bands
        ]
        if rules.sharing_bands is not None
        else list(DEFAULT_BAND_RATES)
    )
    periods_a_year = 12 * len(rules.periods.publicity_days)
    bands = []
    for from_age, to_age, severe, mild in table:
        if from_age >= rules.entry.exit_age_years:
            break
        outcomes = []
        for tier, rate in ((Tier.SEVERE, severe), (Tier.MILD, mild)):
            payout = rules.payout_fen(from_age, tier, accident=False)
            if payout is not None and rate:
                outcomes.append(Outcome(payout, Fraction(rate, PER_MILLION * periods_a_year)))
        bands.append(AgeBand(from_age, to_age, Risk(tuple(outcomes))))
    return bands


# --- the annual cap under banded sharing ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BandedPast:
    """What a member's year to date needs of an earlier period of the year: its band cuts
    (`band_cuts`; none for a uniform period) and the share of each band (one for a uniform one)."""

    cuts: tuple[date, ...]
    shares: tuple[int, ...]
    annual_cap_fen: int | None

    def share_of(self, birth_on: date) -> int:
        return self.shares[band_index(birth_on, self.cuts)]


@dataclass(frozen=True, slots=True)
class BirthInterval:
    """Births in (born_after_on, born_by_on]; None is an open end."""

    born_after_on: date | None
    born_by_on: date | None

    @property
    def representative(self) -> date:
        """One birth date of the interval (its members all fall in the same bands)."""
        if self.born_by_on is not None:
            return self.born_by_on
        if self.born_after_on is not None:
            return self.born_after_on + timedelta(days=1)
        return date(2000, 1, 1)

    def holds(self, birth_on: date) -> bool:
        return (self.born_after_on is None or birth_on > self.born_after_on) and (
            self.born_by_on is None or birth_on <= self.born_by_on
        )


def birth_intervals(cut_sets: Iterable[Sequence[date]]) -> list[BirthInterval]:
    """The birth-date intervals between every cut of every period: members born in the same
    interval were in the same band at each of those periods' lock dates. Ascending."""
    bounds: list[date | None] = [None, *sorted({cut for cuts in cut_sets for cut in cuts}), None]
    return [BirthInterval(low, high) for low, high in itertools.pairwise(bounds)]


def banded_year_to_date(periods: Iterable[BandedPast], birth_on: date) -> int:
    """`apportionment.year_to_date` of a member born on `birth_on` who shared, without any
    exception, in each of `periods` (in order), paying their band's share capped each time."""
    ytd = 0
    for period in periods:
        ytd += capped_charge(period.share_of(birth_on), period.annual_cap_fen, ytd)
    return ytd


@dataclass(frozen=True, slots=True)
class BandGroup:
    """Members who have paid exactly the same this year and pay the same now: those of one cohort
    (`cohort`: the index of their first period of the year, `len(year)` for the current one) born
    in one interval. `band` is their band now, `count` how many share now. A group of one
    `member` (a membership id) is a member whose own year differs from their group's."""

    cohort: int
    interval: int
    band: int
    ytd_fen: int
    count: int = 0
    member: int | None = None

    @property
    def key(self) -> str:
        return (
            f"{self.cohort}/{self.interval}" if self.member is None else f"membership:{self.member}"
        )


def band_groups(
    year: Sequence[BandedPast], cuts: Sequence[date]
) -> tuple[list[BirthInterval], list[BandGroup]]:
    """The intervals cut at every band edge of `year` (the earlier periods of the calendar year,
    in order) and of the current period's `cuts`, and one group per (cohort, interval) with its
    year to date and its band now (counts 0: the caller counts the members)."""
    intervals = birth_intervals([*(period.cuts for period in year), cuts])
    groups: list[BandGroup] = []
    for position, interval in enumerate(intervals):
        born = interval.representative
        band = band_index(born, cuts)
        groups.extend(
            BandGroup(cohort, position, band, banded_year_to_date(year[cohort:], born))
            for cohort in range(len(year) + 1)
        )
    return intervals, groups


def apportion_banded(
    *,
    rule: SharingRule,
    aid_fen: int,
    case_count: int,
    fee_bp: int,
    surplus_in_fen: int,
    classes: Sequence[RiskClass],
    bands: Sequence[AgeBand],
    per_case_cap_fen: int | None,
    cap_excess: CapExcess = CapExcess.SPONSOR,
    annual_cap_fen: int | None = None,
    groups: Sequence[BandGroup] = (),
    class_aid_fen: Sequence[int] | None = None,
) -> tuple[PeriodFigures, list[BandShare]]:
    """`apportionment.apportion` for a non-uniform rule: the need (aid + fee − surplus in) is split
    among the age bands exactly, each band's part over its members rounded up. The figures keep
    their meaning — `share_fen` and `uncapped_share_fen` are the largest band's, `charges` has one
    line per band — so `PeriodFigures.check` proves the same identity::

        total + sponsor + prorated == aid + fee − surplus_in + surplus_out

    With `groups` (the annual cap may bind: every band's members split into `BandGroup`s, the
    counts of each band's groups adding up to the band's), `charges` has one line per group, each
    member paying ``capped_charge(band share, annual cap, group's year to date)``.
    `class_aid_fen` (the aid paid to each band's claimants, Σ == aid) is what the compensation
    rule weighs; without it, the aid is taken as arising in each band in its expected part.
    """
    if aid_fen < 0 or surplus_in_fen < 0 or case_count < 0:
        raise ValueError("aid, surplus and case count are never negative")
    if case_count == 0 and aid_fen:
        raise ValueError("aid without a case")
    fee = apply_basis_points(aid_fen, fee_bp) if case_count else 0
    need = aid_fen + fee - surplus_in_fen
    cap = case_count * per_case_cap_fen if per_case_cap_fen is not None else None
    lines = band_shares(rule, need, classes, bands, aid_fen, cap, class_aid_fen)
    if groups:
        for index, line in enumerate(lines):
            if sum(g.count for g in groups if g.band == index) != line.member_count:
                raise ValueError("the groups of a band do not add up to its members")
        charges = tuple(
            CohortCharge(
                g.key, g.count, capped_charge(lines[g.band].share_fen, annual_cap_fen, g.ytd_fen)
            )
            for g in groups
        )
    else:
        charges = tuple(CohortCharge(line.key, line.member_count, line.share_fen) for line in lines)
    total = sum(c.count * c.charge_fen for c in charges)
    shortfall = max(0, need - total)
    figures = PeriodFigures(
        member_count=sum(c.count for c in classes),
        case_count=case_count,
        aid_fen=Fen(aid_fen),
        fee_fen=Fen(fee),
        surplus_in_fen=Fen(surplus_in_fen),
        uncapped_share_fen=Fen(max((line.uncapped_share_fen for line in lines), default=0)),
        share_fen=Fen(max((line.share_fen for line in lines), default=0)),
        charges=charges,
        total_charged_fen=Fen(total),
        capped_fen=Fen(sum(line.member_count * line.uncapped_share_fen for line in lines) - total),
        sponsor_fen=Fen(shortfall if cap_excess is CapExcess.SPONSOR else 0),
        prorated_fen=Fen(shortfall if cap_excess is CapExcess.PRORATE else 0),
        surplus_out_fen=Fen(max(0, total - need)),
    )
    figures.check()
    return figures, lines
