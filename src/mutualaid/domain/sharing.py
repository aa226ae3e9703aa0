"""Sharing rules: who pays how much of a period's total, exactly to the fen.

A period's total ``T`` (aid + fee − surplus) is split among the sharing members by one of three
rules. Every rule only chooses *weights*; the split itself is always `money.allocate` (largest
remainder), so Σ shares == T exactly, whatever the rule.

* **uniform** (Xiang Hu Bao): every member the same weight.
* **proportional**: weight = the member's expected loss ``E[X_i]`` (age-banded in practice: the
  probabilities of each payout for the member's age band).
* **conditional_mean**: the conditional mean risk sharing rule of Denuit & Dhaene (2012):
  weight = ``E[X_i | S = s]``, the member's expected loss *given* the realised aid ``s = Σ X_j``.

Each member's loss ``X_i`` in a period is discrete and independent of the others: a payout
``b_ik`` with probability ``p_ik`` for each outcome ``k`` (e.g. severe / mild), otherwise 0. The
Bernoulli case of the paper is one outcome. Then, exactly::

    E[X_i | S = s] = Σ_k b_ik · p_ik · P(S − X_i = s − b_ik) / P(S = s)

and Σ_i E[X_i | S = s] = s, E[E[X_i | S]] = E[X_i] (the rule is fair in expectation, like the
proportional one; it differs in how a bad period's excess is spread: towards the members whose
losses make such a total likely). Members of an age band are exchangeable, so the band-level
functions compute one value per band.

Reference: Denuit, M. & Dhaene, J. (2012), "Convex order and comonotonic conditional mean risk
sharing", Insurance: Mathematics and Economics 51(2), 265–270.

Everything here is exact (integers and `fractions.Fraction`); the simulator's vectorised large-pool
version lives in `mutualaid.forecasts.rules`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, localcontext
from enum import StrEnum
from fractions import Fraction

from mutualaid.domain.apportionment import CapExcess, CohortCharge, PeriodFigures, capped_charge
from mutualaid.domain.errors import DomainError
from mutualaid.domain.money import BASIS_POINTS, Fen, allocate, apply_basis_points
from mutualaid.domain.plans import PlanRules, Tier

#: A probability distribution over integer fen amounts.
Distribution = Mapping[int, Fraction]


class SharingRule(StrEnum):
    UNIFORM = "uniform"
    PROPORTIONAL = "proportional"
    CONDITIONAL_MEAN = "conditional_mean"


@dataclass(frozen=True, slots=True)
class Outcome:
    """A payout of `amount_fen` that happens with `probability` in the period."""

    amount_fen: int
    probability: Fraction


@dataclass(frozen=True, slots=True)
class Risk:
    """One member's loss in a period: each outcome's payout with its probability, else nothing."""

    outcomes: tuple[Outcome, ...]

    def __post_init__(self) -> None:
        total = Fraction(0)
        for index, outcome in enumerate(self.outcomes):
            if isinstance(outcome.amount_fen, bool) or not isinstance(outcome.amount_fen, int):
                raise DomainError(
                    "invalid_risk",
                    "a payout is an int number of fen",
                    f"outcomes[{index}].amount_fen",
                )
            if outcome.amount_fen <= 0:
                raise DomainError(
                    "invalid_risk", "a payout is positive", f"outcomes[{index}].amount_fen"
                )
            if not 0 <= outcome.probability <= 1:
                raise DomainError(
                    "invalid_risk",
                    "a probability is between 0 and 1",
                    f"outcomes[{index}].probability",
                )
            total += outcome.probability
        if total > 1:
            raise DomainError(
                "invalid_risk", "the outcomes' probabilities add up to more than 1", "outcomes"
            )

    @classmethod
    def bernoulli(cls, amount_fen: int, probability: Fraction | int) -> Risk:
        return cls((Outcome(amount_fen, Fraction(probability)),))

    @property
    def expected_fen(self) -> Fraction:
        return sum((o.probability * o.amount_fen for o in self.outcomes), Fraction(0))

    def distribution(self) -> dict[int, Fraction]:
        """P(X = x) for every x with a positive probability (0 included)."""
        law: dict[int, Fraction] = {}
        nothing = 1 - sum((o.probability for o in self.outcomes), Fraction(0))
        if nothing:
            law[0] = nothing
        for outcome in self.outcomes:
            if outcome.probability:
                law[outcome.amount_fen] = (
                    law.get(outcome.amount_fen, Fraction(0)) + outcome.probability
                )
        return law


# --- exact distributions ---------------------------------------------------------------------


def convolve(first: Distribution, second: Distribution) -> dict[int, Fraction]:
    """The law of A + B for independent A ~ `first` and B ~ `second`."""
    law: dict[int, Fraction] = {}
    for a, pa in first.items():
        for b, pb in second.items():
            law[a + b] = law.get(a + b, Fraction(0)) + pa * pb
    return law


def power(law: Distribution, count: int) -> dict[int, Fraction]:
    """The law of the sum of `count` independent copies (square and multiply)."""
    if count < 0:
        raise ValueError("count must be non-negative")
    result: dict[int, Fraction] = {0: Fraction(1)}
    base = dict(law)
    while count:
        if count & 1:
            result = convolve(result, base)
        count >>= 1
        if count:
            base = convolve(base, base)
    return result


def distribution_of_sum(risks: Iterable[Risk]) -> dict[int, Fraction]:
    """The exact law of S = Σ X_i."""
    law: dict[int, Fraction] = {0: Fraction(1)}
    for risk in risks:
        law = convolve(law, risk.distribution())
    return law


def _conditional_mean(
    risk: Risk, others: Distribution, realised_fen: int, p_total: Fraction
) -> Fraction:
    """E[X | S = s] for a member with loss `risk` when the others' sum has law `others`."""
    numerator = sum(
        (
            o.amount_fen * o.probability * others.get(realised_fen - o.amount_fen, Fraction(0))
            for o in risk.outcomes
        ),
        Fraction(0),
    )
    return numerator / p_total


def _impossible(realised_fen: int) -> DomainError:
    return DomainError(
        "impossible_total",
        f"a total aid of {realised_fen} fen cannot arise from these risks",
        "realised_fen",
    )


def conditional_means(risks: Sequence[Risk], realised_fen: int) -> list[Fraction]:
    """Exactly E[X_i | S = s] for every member (Denuit & Dhaene 2012); Σ == s.

    Exponential in nothing but the support of S: meant for small pools (tests, audits, a family
    plan). For age bands, use `class_conditional_means`.
    """
    laws = [risk.distribution() for risk in risks]
    # prefix[i]: law of X_0 + … + X_{i−1}; suffix[i]: law of X_i + … + X_{n−1}.
    prefix: list[dict[int, Fraction]] = [{0: Fraction(1)}]
    for law in laws:
        prefix.append(convolve(prefix[-1], law))
    suffix: list[dict[int, Fraction]] = [{0: Fraction(1)}]
    for law in reversed(laws):
        suffix.append(convolve(suffix[-1], law))
    suffix.reverse()
    p_total = prefix[-1].get(realised_fen, Fraction(0))
    if not p_total:
        raise _impossible(realised_fen)
    means: list[Fraction] = []
    for index, risk in enumerate(risks):
        others = convolve(prefix[index], suffix[index + 1])
        means.append(_conditional_mean(risk, others, realised_fen, p_total))
    return means


# --- exchangeable classes (age bands) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RiskClass:
    """`count` exchangeable members (an age band) who each carry `risk`."""

    key: str
    count: int
    risk: Risk

    def __post_init__(self) -> None:
        if self.count < 0:
            raise DomainError("invalid_risk", "a class has a non-negative count", "count")


def class_conditional_means(classes: Sequence[RiskClass], realised_fen: int) -> list[Fraction]:
    """E[X_i | S = s] for one member of each class (exact; members of a class are exchangeable)."""
    full = [power(c.risk.distribution(), c.count) for c in classes]
    total = {0: Fraction(1)}
    for law in full:
        total = convolve(total, law)
    p_total = total.get(realised_fen, Fraction(0))
    if not p_total:
        raise _impossible(realised_fen)
    means: list[Fraction] = []
    for index, risk_class in enumerate(classes):
        if risk_class.count == 0:
            means.append(Fraction(0))
            continue
        others = power(risk_class.risk.distribution(), risk_class.count - 1)
        for other_index, law in enumerate(full):
            if other_index != index:
                others = convolve(others, law)
        means.append(_conditional_mean(risk_class.risk, others, realised_fen, p_total))
    return means


# --- from weights to fen ------------------------------------------------------------------------


def integer_weights(values: Sequence[Fraction | int]) -> list[int]:
    """The same proportions as integers (numerators over the least common denominator)."""
    fractions = [Fraction(v) for v in values]
    if any(f < 0 for f in fractions):
        raise ValueError("weights must be non-negative")
    denominator = math.lcm(*(f.denominator for f in fractions)) if fractions else 1
    return [int(f * denominator) for f in fractions]


def _allocate(
    total: int, weights: Sequence[Fraction | int], tie_keys: Sequence[Hashable] | None
) -> list[Fen]:
    if total < 0:
        raise DomainError("invalid_total", "a total to share is never negative", "total")
    if total == 0:
        return [Fen(0)] * len(weights)
    integers = integer_weights(weights)
    if not any(integers):
        raise DomainError(
            "nothing_to_weigh", "no member has a positive weight under this rule", "weights"
        )
    return allocate(total, integers, tie_keys)


def uniform_shares(total: int, count: int, tie_keys: Sequence[Hashable] | None = None) -> list[Fen]:
    """Xiang Hu Bao's rule: the same for everyone (largest remainder for the last fen)."""
    return _allocate(total, [1] * count, tie_keys)


def proportional_shares(
    total: int, risks: Sequence[Risk], tie_keys: Sequence[Hashable] | None = None
) -> list[Fen]:
    """In proportion to each member's expected loss E[X_i]."""
    return _allocate(total, [risk.expected_fen for risk in risks], tie_keys)


def conditional_mean_shares(
    total: int, risks: Sequence[Risk], realised_fen: int, tie_keys: Sequence[Hashable] | None = None
) -> list[Fen]:
    """In proportion to E[X_i | S = s]: the total (aid + fee − surplus) scales the aid s."""
    if total == 0:
        return [Fen(0)] * len(risks)
    return _allocate(total, conditional_means(risks, realised_fen), tie_keys)


def shares(
    rule: SharingRule,
    total: int,
    risks: Sequence[Risk],
    realised_fen: int,
    tie_keys: Sequence[Hashable] | None = None,
) -> list[Fen]:
    """Split `total` among the members whose period losses are `risks` by `rule`."""
    match rule:
        case SharingRule.UNIFORM:
            return uniform_shares(total, len(risks), tie_keys)
        case SharingRule.PROPORTIONAL:
            return proportional_shares(total, risks, tie_keys)
        case SharingRule.CONDITIONAL_MEAN:
            return conditional_mean_shares(total, risks, realised_fen, tie_keys)


def class_weights(
    rule: SharingRule, classes: Sequence[RiskClass], realised_fen: int
) -> list[Fraction]:
    """The weight of ONE member of each class under `rule`."""
    match rule:
        case SharingRule.UNIFORM:
            return [Fraction(1)] * len(classes)
        case SharingRule.PROPORTIONAL:
            return [c.risk.expected_fen for c in classes]
        case SharingRule.CONDITIONAL_MEAN:
            return class_conditional_means(classes, realised_fen)


def class_totals(
    rule: SharingRule, total: int, classes: Sequence[RiskClass], realised_fen: int
) -> list[Fen]:
    """What each class pays in all (Σ == total), each member weighing `class_weights`."""
    weights = class_weights(rule, classes, realised_fen) if total else [Fraction(0)] * len(classes)
    return _allocate(
        total,
        [w * c.count for w, c in zip(weights, classes, strict=True)],
        [c.key for c in classes],
    )


# --- fairness -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FairnessRow:
    """One class (age band): what a member expects to receive and to pay per period.

    `contribution_fen[rule]` is the expected charge of one member under that rule, fee included,
    before rounding to the fen. `ratio(rule)` = contribution / (benefit × (1 + fee)): 1 is fair,
    above 1 the class subsidises the others, below 1 it is subsidised.
    """

    key: str
    count: int
    benefit_fen: Fraction
    contribution_fen: Mapping[SharingRule, Fraction]
    fee_bp: int

    def ratio(self, rule: SharingRule) -> Fraction | None:
        cost = self.benefit_fen * (BASIS_POINTS + self.fee_bp) / BASIS_POINTS
        return self.contribution_fen[rule] / cost if cost else None


def fairness_report(classes: Sequence[RiskClass], fee_bp: int) -> list[FairnessRow]:
    """Expected contribution against expected benefit for each class under each rule.

    With the fee a fixed share of the aid, the total is T = S·(1 + f), so a member's expected
    contribution is (1 + f)·E[S]/N under the uniform rule and (1 + f)·E[X_i] under both the
    proportional rule (by construction) and the conditional mean rule (E[E[X_i | S]] = E[X_i]).
    """
    if fee_bp < 0:
        raise DomainError("invalid_fee", "a fee is never negative", "fee_bp")
    gross = Fraction(BASIS_POINTS + fee_bp, BASIS_POINTS)
    members = sum(c.count for c in classes)
    expected_total = sum((c.count * c.risk.expected_fen for c in classes), Fraction(0))
    uniform = gross * expected_total / members if members else Fraction(0)
    rows: list[FairnessRow] = []
    for risk_class in classes:
        benefit = risk_class.risk.expected_fen
        rows.append(
            FairnessRow(
                key=risk_class.key,
                count=risk_class.count,
                benefit_fen=benefit,
                contribution_fen={
                    SharingRule.UNIFORM: uniform,
                    SharingRule.PROPORTIONAL: gross * benefit,
                    SharingRule.CONDITIONAL_MEAN: gross * benefit,
                },
                fee_bp=fee_bp,
            )
        )
    return rows


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
#: Pools up to this many members get the exact conditional mean; larger ones the Esscher form.
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
    rule: SharingRule, classes: Sequence[RiskClass], realised_fen: int
) -> list[Fraction]:
    """The weight of one member of each band. The conditional mean is exact for small pools (when
    the realised aid can arise from the bands' risks); otherwise its large-pool (Esscher) form,
    computed in decimal arithmetic so that anyone recomputes the same digits."""
    if rule is SharingRule.CONDITIONAL_MEAN and realised_fen > 0:
        if sum(c.count for c in classes) <= EXACT_POOL_LIMIT:
            try:
                return class_conditional_means(classes, realised_fen)
            except DomainError:
                pass  # a total these risks cannot produce (a claimant who no longer shares)
        return tilted_means(classes, realised_fen)
    if rule is SharingRule.CONDITIONAL_MEAN:
        return [c.risk.expected_fen for c in classes]
    return class_weights(rule, classes, realised_fen)


def tilted_means(classes: Sequence[RiskClass], realised_fen: int) -> list[Fraction]:
    """E_θ[X_i] for one member of each class, θ such that Σ n_a E_θ[X_a] = s (bisection in
    40-digit decimals; see `mutualaid.forecasts.rules` for the derivation)."""
    with localcontext() as context:
        context.prec = 40
        scale = Decimal(max((o.amount_fen for c in classes for o in c.risk.outcomes), default=1))

        def means(theta: Decimal) -> list[Decimal]:
            result = []
            for risk_class in classes:
                nothing = 1 - sum((o.probability for o in risk_class.risk.outcomes), Fraction(0))
                mass = _decimal(nothing)
                weighted = Decimal(0)
                for o in risk_class.risk.outcomes:
                    tilt = _decimal(o.probability) * (theta * o.amount_fen / scale).exp()
                    mass += tilt
                    weighted += tilt * o.amount_fen
                result.append(weighted / mass if mass else Decimal(0))
            return result

        target = Decimal(realised_fen)
        low, high = Decimal(-200), Decimal(200)
        for _ in range(120):
            middle = (low + high) / 2
            total = sum(
                (c.count * m for c, m in zip(classes, means(middle), strict=True)), Decimal(0)
            )
            low, high = (low, middle) if total > target else (middle, high)
        return [Fraction(m.quantize(Decimal("1e-12"))) for m in means((low + high) / 2)]


def _decimal(value: Fraction) -> Decimal:
    return Decimal(value.numerator) / Decimal(value.denominator)


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


def band_shares(
    rule: SharingRule,
    need_fen: int,
    classes: Sequence[RiskClass],
    bands: Sequence[AgeBand],
    realised_fen: int,
    share_cap_fen: int | None,
) -> list[BandShare]:
    """Split the need among the bands (`class_totals`-style, largest remainder, Σ == need), then
    each band's part uniformly over its members, rounded up to the fen (the over-collection is
    carried, as under the uniform rule) and capped at `share_cap_fen` (cases × per-case cap)."""
    weights = (
        banded_weights(rule, classes, realised_fen)
        if need_fen > 0
        else [Fraction(0)] * len(classes)
    )
    weighted = [w * c.count for w, c in zip(weights, classes, strict=True)]
    if need_fen > 0 and not any(weighted):
        # Nobody carries a risk under this table (all rates 0): the members share it evenly.
        weights = [Fraction(1)] * len(classes)
        weighted = [Fraction(c.count) for c in classes]
    totals = (
        _allocate(need_fen, weighted, [c.key for c in classes])
        if need_fen > 0 and any(weighted)
        else [Fen(0)] * len(classes)
    )
    result = []
    for band, risk_class, weight, total in zip(bands, classes, weights, totals, strict=True):
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
) -> tuple[PeriodFigures, list[BandShare]]:
    """`apportionment.apportion` for a non-uniform rule: the need (aid + fee − surplus in) is split
    among the age bands exactly, each band's part over its members rounded up. The figures keep
    their meaning — `share_fen` and `uncapped_share_fen` are the largest band's, `charges` has one
    line per band — so `PeriodFigures.check` proves the same identity::

        total + sponsor + prorated == aid + fee − surplus_in + surplus_out

    With `groups` (the annual cap may bind: every band's members split into `BandGroup`s, the
    counts of each band's groups adding up to the band's), `charges` has one line per group, each
    member paying ``capped_charge(band share, annual cap, group's year to date)``.
    """
    if aid_fen < 0 or surplus_in_fen < 0 or case_count < 0:
        raise ValueError("aid, surplus and case count are never negative")
    if case_count == 0 and aid_fen:
        raise ValueError("aid without a case")
    fee = apply_basis_points(aid_fen, fee_bp) if case_count else 0
    need = aid_fen + fee - surplus_in_fen
    cap = case_count * per_case_cap_fen if per_case_cap_fen is not None else None
    lines = band_shares(rule, need, classes, bands, aid_fen, cap)
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
