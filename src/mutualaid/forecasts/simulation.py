"""Simulate a plan over many periods and many random scenarios at once, without a row per member.

The population is held as cohorts: counts per (scenario, period of joining, sex, age band), int64.
Everything a member's fate depends on is a function of those four: the waiting period and the
wearing off of the health declaration (time since joining), incidence (age, sex), payouts (age),
leaving (age band and the band's recent charge) and the annual cap (every member of a joining
cohort has shared in the same periods, so has the same charges so far this year). Each period
draws, per cohort and vectorised over scenarios, binomial counts of leavers, of members moving to
the next age band, and of new cases per tier. Money is integer fen throughout (int64); the period
arithmetic is the product rule (see `settle`), identical to `mutualaid.domain.apportionment`.

Reproducible: scenario batches of `BATCH_SIZE` each draw from their own stream
``SeedSequence(seed, spawn_key=(batch,))``, so a result depends on the seed only, never on how
many worker processes ran it, and the first k × BATCH_SIZE scenarios are the same for any total.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import date, timedelta
from multiprocessing import get_context
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from mutualaid.domain.errors import DomainError
from mutualaid.domain.money import BASIS_POINTS, allocate
from mutualaid.domain.plans import PlanRules, Tier
from mutualaid.domain.sharing import SharingRule
from mutualaid.forecasts.models import ForecastModel
from mutualaid.forecasts.rules import WEIGHT_BITS, band_weights
from mutualaid.forecasts.starting_points import Multiplier, StartingPoint

DAYS_PER_YEAR = 365.25
BATCH_SIZE = 25
#: Above this a period's need times a rule's weight could overflow int64.
MAX_NEED_FEN = 1 << (62 - WEIGHT_BITS)
MAX_PERIODS = 480

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]

#: Per-period outputs, each (scenarios, periods). Money in fen.
INT_SERIES = (
    "members",
    "joins",
    "leavers",
    "exits",
    "diagnosed",
    "ended",
    "cases",
    "aid_fen",
    "fee_fen",
    "charged_fen",
    "share_fen",
    "sponsor_fen",
    "surplus_fen",
    "capped_members",
)
#: A process pool pays off only for this many batches or more (starting a worker takes seconds).
MIN_BATCHES_FOR_WORKERS = 4
FLOAT_SERIES = ("per_case_cap_use", "annual_cap_use")


@dataclass(frozen=True, slots=True)
class SimulationSettings:
    periods: int
    scenarios: int
    seed: int
    rule: SharingRule = SharingRule.UNIFORM
    #: Day 0 of the join ramp; None: the model's `joins.start_on`.
    start_on: date | None = None
    workers: int = 1
    #: The plan's members and surplus on the start day (default: an empty plan at launch).
    start: StartingPoint = field(default_factory=StartingPoint)
    #: Publicity days (first, last inclusive) whose cases the operator pays: no share is charged
    #: (Xiang Hu Bao: Ant Group paid every case before January 2019 and the last periods).
    sponsored: tuple[tuple[date, date], ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.periods <= MAX_PERIODS:
            raise DomainError(
                "invalid_periods",
                f"periods must be between 1 and {MAX_PERIODS}",
                "periods",
                details={"max": MAX_PERIODS},
            )
        if self.scenarios < 1:
            raise DomainError("invalid_scenarios", "at least one scenario is needed", "scenarios")
        if self.seed < 0:
            raise DomainError("invalid_seed", "a seed is a non-negative integer", "seed")
        if self.workers < 1:
            raise DomainError("invalid_workers", "at least one worker is needed", "workers")


@dataclass(frozen=True, slots=True)
class Setup:
    """Everything a batch needs, precomputed once (small arrays; pickled to worker processes)."""

    publicity_on: tuple[date, ...]
    band_edges: tuple[int, ...]
    tiers: tuple[Tier, ...]
    rule: SharingRule
    fee_bp: int
    per_case_cap_fen: int | None
    annual_cap_fen: int | None
    #: (N, 2, A) joiners of each period by sex (0 male, 1 female) and age band.
    joins: I64
    #: (N, N) [t, j]: a member of cohort j's share of the period's incidence that is covered
    #: (waiting period, exposure, health-declaration factor, period length in years).
    cover: F64
    #: (T, 2, A) approved claims per member-year, mature.
    rates: F64
    #: (N, A, T) the rule's per-period claim probabilities (age-banded, both sexes).
    rule_probabilities: F64
    #: (A, T) payout per case.
    payouts: I64
    severe: tuple[bool, ...]
    #: (N, N, A) [t, j, a]: chance that a member of cohort j in band a moves to the next band
    #: (or, from the last band, out of the plan) during period t.
    ageing: F64
    churn_base: F64
    churn_per_yuan: F64
    churn_alpha: float
    churn_max: float
    delay: F64
    year_start: tuple[bool, ...]
    #: (K, 2, A) members already in the plan at the start, by joining cohort, sex and age band;
    #: their cohorts come before the forecast's own (cohort index K + t joins in period t).
    initial: I64
    initial_ytd_fen: I64  # (K,)
    initial_surplus_fen: int
    incidence_multiplier: Multiplier | None
    leaving_multiplier: Multiplier | None
    sponsored: tuple[bool, ...]
    #: (N, K+N) covered share of a year for accidents (no waiting period where the plan covers
    #: them, no health-declaration factor) and (T, 2, A) their rate; None: `accident_share`.
    accidents: tuple[F64, F64] | None

    @property
    def periods(self) -> int:
        return len(self.publicity_on)

    @property
    def initial_cohorts(self) -> int:
        return len(self.initial)

    @property
    def bands(self) -> int:
        return len(self.band_edges) - 1

    def band_labels(self) -> list[str]:
        return [
            f"{low}-{high - 1}"
            for low, high in zip(self.band_edges, self.band_edges[1:], strict=False)
        ]


# --- setting up ----------------------------------------------------------------------------------


def publicity_dates(start_on: date, publicity_days: list[int], periods: int) -> list[date]:
    """The first `periods` publicity days strictly after `start_on`."""
    dates: list[date] = []
    day = start_on
    while len(dates) < periods:
        day += timedelta(days=1)
        if day.day in publicity_days:
            dates.append(day)
    return dates


def band_edges(rules: PlanRules, model: ForecastModel) -> list[int]:
    """The age band edges [edges[i], edges[i + 1]) from the plan's entry age to its exit age: every
    5 years and every edge of the plan's payout bands and of the model's age tables."""
    low, high = rules.entry.min_age_years, rules.entry.exit_age_years
    edges = {low, high, rules.entry.max_age_years + 1, *range(0, high, 5)}
    for band in rules.payout_bands:
        edges |= {band.from_age, band.to_age + 1}
    for rows in (model.incidence, model.churn.bands, model.joins.age_mix):
        for row in rows:
            edges |= {row.from_age, row.to_age + 1}
    return sorted(edge for edge in edges if low <= edge <= high)


class _AgeRow(Protocol):
    @property
    def from_age(self) -> int: ...

    @property
    def to_age(self) -> int: ...


def _row_for(rows: Sequence[_AgeRow], age: int, key: str) -> int:
    for index, row in enumerate(rows):
        if row.from_age <= age <= row.to_age:
            return index
    raise DomainError("invalid_model", f"no row covers age {age}, which the plan covers", key)


def _interpolate(knots: list[tuple[float, float]], x: F64) -> F64:
    xs = np.array([k[0] for k in knots])
    ys = np.array([k[1] for k in knots])
    return np.asarray(np.interp(x, xs, ys), dtype=np.float64)


def ageing_chances(
    lows: F64, highs: F64, joins_by_band: F64, tenure_from: F64, tenure_to: F64
) -> F64:
    """[t, j, a]: the chance that a member of cohort j in band a crosses the band's upper edge
    between `tenure_from[t, j]` and `tenure_to[t, j]` (years since joining).

    A cohort's members join spread evenly over their band's ages, so at tenure τ the joiners of
    band b are spread evenly over [low_b + τ, high_b + τ): the mass of the cohort in each band and
    the mass crossing each edge are known exactly; their ratio is the crossing chance. (Exact when
    leaving and claims do not depend on the age within a band; a cohort does not spread out.)
    """
    mass = np.zeros((*tenure_from.shape, len(lows)))
    crossing = np.zeros_like(mass)
    elapsed = (tenure_to - tenure_from)[:, :, None]
    for b in range(len(lows)):
        weight = joins_by_band[None, :, b, None]  # (1, N, 1)
        if not weight.any():
            continue
        width = highs[b] - lows[b]
        low = lows[b] + tenure_from[:, :, None]
        high = highs[b] + tenure_from[:, :, None]
        inside = np.clip(np.minimum(high, highs) - np.maximum(low, lows), 0.0, None)
        passing = np.clip(np.minimum(high, highs) - np.maximum(low, highs - elapsed), 0.0, None)
        mass += weight * inside / width
        crossing += weight * passing / width
    with np.errstate(divide="ignore", invalid="ignore"):
        chance = np.where(mass > 0, crossing / np.where(mass > 0, mass, 1.0), 0.0)
    return np.clip(chance, 0.0, 1.0)


def build_setup(rules: PlanRules, model: ForecastModel, settings: SimulationSettings) -> Setup:
    start_on = settings.start_on or model.joins.start_on
    dates = publicity_dates(start_on, rules.periods.publicity_days, settings.periods)
    periods = len(dates)
    edges = band_edges(rules, model)
    lows, highs = np.array(edges[:-1]), np.array(edges[1:])
    bands = len(lows)
    tiers = tuple(t for t in (Tier.SEVERE, Tier.MILD) if any(i.tier == t for i in rules.illnesses))

    payouts = np.zeros((bands, len(tiers)), dtype=np.int64)
    for a, age in enumerate(lows):
        for k, tier in enumerate(tiers):
            payouts[a, k] = rules.payout_fen(int(age), tier, accident=False) or 0
    rates = np.zeros((len(tiers), 2, bands))
    for a, age in enumerate(lows):
        row = model.incidence[_row_for(model.incidence, int(age), "incidence")]
        for k, tier in enumerate(tiers):
            per_sex = row.severe if tier is Tier.SEVERE else row.mild
            rates[k, :, a] = np.array(per_sex) / 100_000 * model.incidence_level
    rates *= (payouts.T > 0)[:, None, :]  # an uncovered tier at an age is no case

    # Joiners: the ramp's cumulative count at each publicity day, split by sex and age band.
    days = np.array([(d - start_on).days for d in dates], dtype=np.float64)
    cumulative = np.rint(_interpolate(model.joins.cumulative, days)).astype(np.int64)
    per_period = np.diff(cumulative, prepend=0)
    mix = np.zeros(bands)
    if model.joins.age_mix:
        for a, (low, high) in enumerate(zip(lows, highs, strict=True)):
            if low > rules.entry.max_age_years:
                continue
            for weight in model.joins.age_mix:
                if weight.from_age <= low <= weight.to_age:
                    mix[a] = weight.weight * (high - low) / (weight.to_age + 1 - weight.from_age)
    else:
        mix = (lows <= rules.entry.max_age_years).astype(np.float64) * (highs - lows)
    if mix.sum() <= 0:
        raise DomainError(
            "invalid_model",
            "the joiners' age mix gives no weight to the plan's "
            f"entry ages {rules.entry.min_age_years}-{rules.entry.max_age_years}",
            "joins.age_mix",
        )
    male = model.joins.male_share
    cell_weights = np.concatenate([mix * male, mix * (1 - male)])
    integer_weights = [int(w) for w in np.rint(cell_weights / cell_weights.sum() * 1_000_000_000)]
    joins = np.array(
        [allocate(int(total), integer_weights) for total in per_period], dtype=np.int64
    ).reshape(periods, 2, bands)
    initial, initial_ytd, initial_joined = _initial_cohorts(settings.start, edges)

    # Exposure, waiting period and selection of cohort j during period t's interval (the
    # members already there first: they joined before day 0).
    ends = days
    starts = np.concatenate([[0.0], days[:-1]])
    lengths = np.maximum(ends - starts, 1e-9)
    new_joined = (starts + ends) / 2  # joiners arrive, on average, mid-interval
    joined = np.concatenate([initial_joined, new_joined])
    already = len(initial)
    waiting = rules.waiting_period.days + 1 if rules.waiting_period.days else 0
    exposure_from = np.maximum(starts[:, None], joined[None, :])
    exposed = np.clip(ends[:, None] - exposure_from, 0.0, None) / lengths[:, None]
    covered = (
        np.clip(ends[:, None] - np.maximum(starts[:, None], joined[None, :] + waiting), 0.0, None)
        / lengths[:, None]
    )
    accident_cover = exposed if rules.waiting_period.accidents_covered else covered
    tenure_years = (
        np.clip((starts + ends)[:, None] / 2 - joined[None, :], 0.0, None) / DAYS_PER_YEAR
    )
    selection = _interpolate(model.selection.knots, tenure_years)
    share = model.accident_share if model.accident_per_100k is None else 0.0
    cover = selection * ((1 - share) * covered + share * accident_cover)
    cover *= (lengths / DAYS_PER_YEAR)[:, None]
    cover = np.tril(cover, k=already)  # cohorts that have not joined yet are empty anyway
    accidents: tuple[F64, F64] | None = None
    if model.accident_per_100k is not None:
        exposure = np.tril(accident_cover * (lengths / DAYS_PER_YEAR)[:, None], k=already)
        severe_rate = np.zeros((len(tiers), 2, bands))
        if Tier.SEVERE in tiers:
            k = tiers.index(Tier.SEVERE)
            severe_rate[k] = model.accident_per_100k / 100_000 * (payouts[:, k] > 0)
        accidents = (exposure, severe_rate)

    years = lengths / DAYS_PER_YEAR
    rule_rates = (male * rates[:, 0, :] + (1 - male) * rates[:, 1, :]).T  # (A, T)
    rule_probabilities = np.clip(rule_rates[None, :, :] * years[:, None, None], 0.0, 1.0)
    # Ageing during period t of cohort j (j < t): from the interval's start (or from joining,
    # for the first interval after it) to its end.
    since_join_end = (ends[:, None] - new_joined[None, :]) / DAYS_PER_YEAR
    since_join_start = (starts[:, None] - new_joined[None, :]) / DAYS_PER_YEAR
    first = np.eye(periods, k=-1, dtype=bool)
    since_join_start = np.where(first, 0.0, np.clip(since_join_start, 0.0, None))
    ageing = ageing_chances(
        lows.astype(np.float64),
        highs.astype(np.float64),
        joins.sum(axis=1).astype(np.float64),
        since_join_start,
        np.clip(since_join_end, 0.0, None),
    )
    ageing = np.tril(ageing.transpose(2, 0, 1), k=-1).transpose(1, 2, 0)
    # The members already there age from day 0, at known ages (spread evenly within a band).
    ageing_before = ageing_chances(
        lows.astype(np.float64),
        highs.astype(np.float64),
        initial.sum(axis=1).astype(np.float64),
        np.repeat((starts / DAYS_PER_YEAR)[:, None], already, axis=1),
        np.repeat((ends / DAYS_PER_YEAR)[:, None], already, axis=1),
    )
    ageing = np.concatenate([ageing_before, ageing], axis=1)

    churn_rows = model.churn.bands
    base = np.array(
        [churn_rows[_row_for(churn_rows, int(a), "churn.bands")].base_per_period for a in lows]
    )
    per_yuan = np.array(
        [churn_rows[_row_for(churn_rows, int(a), "churn.bands")].per_yuan for a in lows]
    )
    year_start = tuple(t > 0 and dates[t].year != dates[t - 1].year for t in range(periods))
    sponsored = tuple(any(f <= d <= to for f, to in settings.sponsored) for d in dates)
    return Setup(
        publicity_on=tuple(dates),
        band_edges=tuple(edges),
        tiers=tiers,
        rule=settings.rule,
        fee_bp=rules.fees.management_fee_bp,
        per_case_cap_fen=rules.caps.per_case_fen,
        annual_cap_fen=rules.caps.annual_fen,
        joins=joins,
        cover=cover,
        rates=rates,
        rule_probabilities=rule_probabilities,
        payouts=payouts,
        severe=tuple(t is Tier.SEVERE for t in tiers),
        ageing=ageing,
        churn_base=base,
        churn_per_yuan=per_yuan,
        churn_alpha=1 - 0.5 ** (1 / model.churn.half_life_periods),
        churn_max=model.churn.max_per_period,
        delay=np.array(model.reporting_delay),
        year_start=year_start,
        initial=initial,
        initial_ytd_fen=initial_ytd,
        initial_surplus_fen=settings.start.surplus_fen,
        incidence_multiplier=settings.start.incidence,
        leaving_multiplier=settings.start.leaving,
        sponsored=sponsored,
        accidents=accidents,
    )


def _initial_cohorts(start: StartingPoint, edges: list[int]) -> tuple[I64, I64, F64]:
    """(K, 2, A) counts of the members already there, their year-to-date shares (K,) and their
    joining days relative to day 0 (K,, negative). Ages outside the plan's bands are left out."""
    bands = len(edges) - 1
    counts = np.zeros((len(start.cohorts), 2, bands), dtype=np.int64)
    for k, cohort in enumerate(start.cohorts):
        for sex, age, count in cohort.members:
            band = int(np.searchsorted(edges, age, side="right")) - 1
            if 0 <= band < bands:
                counts[k, sex, band] += count
    ytd = np.array([cohort.ytd_fen for cohort in start.cohorts], dtype=np.int64)
    joined = np.array([-float(cohort.joined_days_ago) for cohort in start.cohorts])
    return counts, ytd, joined


# --- the period's arithmetic ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settlement:
    """One period's figures for a batch of scenarios (all int64 fen except counts)."""

    fee_fen: I64  # (B,)
    need_fen: I64  # (B,) aid + fee − surplus_in
    uncapped_fen: I64  # (B, A) per-member charge of each band before the caps
    charge_fen: I64  # (B, A) after the per-case cap
    pay_fen: I64  # (B, C, A) after the annual cap, per cell
    total_fen: I64  # (B,)
    sponsor_fen: I64  # (B,)
    surplus_out_fen: I64  # (B,)


def settle(
    *,
    cases: I64,
    aid_fen: I64,
    surplus_in_fen: I64,
    counts: I64,
    ytd_fen: I64,
    weights: I64,
    fee_bp: int,
    per_case_cap_fen: int | None,
    annual_cap_fen: int | None,
) -> Settlement:
    """The product rule, vectorised: cells (B, C, A) of members in band a pay
    ``min(min(ceil(need · w_a / Σ n·w), cases × per-case cap), annual cap − ytd)``;
    no case, no fee, no charge; the sponsor pays what the caps leave unpaid; over-collection is
    the next period's surplus. With uniform weights this is `domain.apportionment.apportion`.
    """
    has_case = cases > 0
    fee = np.where(has_case, (aid_fen * fee_bp * 2 + BASIS_POINTS) // (2 * BASIS_POINTS), 0)
    need = aid_fen + fee - surplus_in_fen
    band_members = counts.sum(axis=1)  # (B, A)
    if weights.max(initial=0) > 1 and need.max(initial=0) >= MAX_NEED_FEN:
        raise DomainError(
            "out_of_range", "a period's aid is beyond what the simulator can weigh", "aid_fen"
        )
    denominator = (band_members * weights).sum(axis=1)
    owed = has_case & (need > 0) & (denominator > 0)
    safe = np.where(owed, denominator, 1)[:, None]
    uncapped = np.where(owed[:, None], -((-need[:, None] * weights) // safe), 0)
    charge = uncapped
    if per_case_cap_fen is not None:
        charge = np.minimum(charge, cases[:, None] * per_case_cap_fen)
    if annual_cap_fen is None:
        pay = np.broadcast_to(charge[:, None, :], counts.shape)
    else:
        pay = np.minimum(charge[:, None, :], np.maximum(annual_cap_fen - ytd_fen, 0))
    total = (counts * pay).sum(axis=(1, 2))
    return Settlement(
        fee_fen=fee,
        need_fen=need,
        uncapped_fen=uncapped,
        charge_fen=charge,
        pay_fen=np.asarray(pay),
        total_fen=total,
        sponsor_fen=np.maximum(need - total, 0),
        surplus_out_fen=np.maximum(total - need, 0),
    )


def sponsored(result: Settlement, aid_fen: I64, surplus_in_fen: I64) -> Settlement:
    """A period whose aid and fee the operator pays: no member is charged, the surplus waits."""
    nothing = np.zeros_like(result.pay_fen)
    return Settlement(
        fee_fen=result.fee_fen,
        need_fen=result.need_fen,
        uncapped_fen=np.zeros_like(result.uncapped_fen),
        charge_fen=np.zeros_like(result.charge_fen),
        pay_fen=nothing,
        total_fen=np.zeros_like(result.total_fen),
        sponsor_fen=np.where(aid_fen > 0, aid_fen + result.fee_fen, 0),
        surplus_out_fen=surplus_in_fen,
    )


# --- one batch of scenarios ----------------------------------------------------------------------


def _generator(seed: int, batch: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(batch,))))


def _draw(rng: np.random.Generator, multiplier: Multiplier | None, size: int) -> F64 | None:
    if multiplier is None:
        return None  # no draw: the scenarios of a plan at launch keep their random stream
    return rng.gamma(multiplier.shape, 1.0 / multiplier.rate, size)


def run_batch(setup: Setup, seed: int, batch: int, size: int) -> dict[str, NDArray[Any]]:
    """Simulate `size` scenarios (the batch-th batch of this seed)."""
    rng = _generator(seed, batch)
    periods, bands, tiers = setup.periods, setup.bands, len(setup.tiers)
    lags = len(setup.delay)
    already = setup.initial_cohorts
    counts = np.zeros((size, already + periods, 2, bands), dtype=np.int64)
    counts[:, :already] = setup.initial
    ytd = np.zeros_like(counts)
    ytd[:, :already] = setup.initial_ytd_fen[None, :, None, None]
    pending = np.zeros((lags, size, bands, tiers), dtype=np.int64)
    surplus = np.full(size, setup.initial_surplus_fen, dtype=np.int64)
    # Each scenario's own multipliers of incidence and of the base leaving rate (live plans).
    incidence_level = _draw(rng, setup.incidence_multiplier, size)
    leaving_level = _draw(rng, setup.leaving_multiplier, size)
    signal = np.zeros((size, bands))
    out: dict[str, NDArray[Any]] = {
        name: np.zeros((size, periods), dtype=np.int64) for name in INT_SERIES
    }
    out |= {name: np.zeros((size, periods)) for name in FLOAT_SERIES}
    band_charge = np.zeros((size, periods, bands), dtype=np.int64)
    band_members = np.zeros((size, periods, bands), dtype=np.int64)
    band_paid = np.zeros((size, bands), dtype=np.int64)
    band_benefit = np.zeros((size, bands), dtype=np.int64)
    for t in range(periods):
        if setup.year_start[t]:
            ytd[:] = 0
        if already + t:
            present = counts[:, : already + t]
            base = (
                setup.churn_base
                if leaving_level is None
                else setup.churn_base[None, :] * leaving_level[:, None]
            )
            hazard = np.minimum(setup.churn_max, base + setup.churn_per_yuan * signal)  # (B, A)
            leave = rng.binomial(present, hazard[:, None, None, :])
            present -= leave
            move = rng.binomial(present, setup.ageing[t, : already + t][None, :, None, :])
            present -= move
            present[..., 1:] += move[..., :-1]
            out["leavers"][:, t] = leave.sum(axis=(1, 2, 3))
            out["exits"][:, t] = move[..., -1].sum(axis=(1, 2))
        counts[:, already + t] = setup.joins[t]
        out["joins"][:, t] = setup.joins[t].sum()
        sharing = counts[:, : already + t + 1]
        diagnosed = np.empty((size, bands, tiers), dtype=np.int64)
        for k in range(tiers):
            chance = setup.cover[t, : already + t + 1, None, None] * setup.rates[k][None, :, :]
            if setup.accidents is not None:
                exposure, accident_rates = setup.accidents
                chance = chance + exposure[t, : already + t + 1, None, None] * accident_rates[k]
            if incidence_level is not None:
                chance = chance[None] * incidence_level[:, None, None, None]
            new = rng.binomial(sharing, np.clip(chance, 0.0, 1.0))
            if setup.severe[k]:
                sharing -= new  # after a severe payout that member's coverage ends
                out["ended"][:, t] += new.sum(axis=(1, 2, 3))
            diagnosed[:, :, k] = new.sum(axis=(1, 2))
        out["diagnosed"][:, t] = diagnosed.sum(axis=(1, 2))
        if lags == 1:
            pending[0] += diagnosed
        else:
            split = rng.multinomial(diagnosed, setup.delay)  # (B, A, T, L)
            for lag in range(lags):
                pending[(t + lag) % lags] += split[..., lag]
        published = pending[t % lags].copy()
        pending[t % lags] = 0

        cases = published.sum(axis=(1, 2))
        aid_band = (published * setup.payouts[None]).sum(axis=2)
        aid = aid_band.sum(axis=1)
        cohorts = already + t + 1
        cells = sharing.reshape(size, cohorts * 2, bands)
        members_band = cells.sum(axis=1)
        weights = band_weights(
            setup.rule, members_band, setup.rule_probabilities[t], setup.payouts, aid
        )
        result = settle(
            cases=cases,
            aid_fen=aid,
            surplus_in_fen=surplus,
            counts=cells,
            ytd_fen=ytd[:, :cohorts].reshape(size, cohorts * 2, bands),
            weights=weights,
            fee_bp=setup.fee_bp,
            per_case_cap_fen=setup.per_case_cap_fen,
            annual_cap_fen=setup.annual_cap_fen,
        )
        if setup.sponsored[t]:
            result = sponsored(result, aid, surplus)
        ytd[:, :cohorts] += result.pay_fen.reshape(size, cohorts, 2, bands)
        surplus = result.surplus_out_fen
        members = members_band.sum(axis=1)
        charged_band = (cells * result.pay_fen).sum(axis=1)
        signal = setup.churn_alpha * result.charge_fen / 100.0 + (1 - setup.churn_alpha) * signal

        out["members"][:, t] = members
        out["cases"][:, t] = cases
        out["aid_fen"][:, t] = aid
        out["fee_fen"][:, t] = result.fee_fen
        out["charged_fen"][:, t] = result.total_fen
        before_annual_cap = (members_band * result.charge_fen).sum(axis=1)
        out["share_fen"][:, t] = -(-before_annual_cap // np.maximum(members, 1))
        out["sponsor_fen"][:, t] = result.sponsor_fen
        out["surplus_fen"][:, t] = result.surplus_out_fen
        out["capped_members"][:, t] = (
            cells * (result.pay_fen < result.charge_fen[:, None, :])
        ).sum(axis=(1, 2))
        if setup.per_case_cap_fen is not None:
            limit = np.maximum(cases * setup.per_case_cap_fen, 1)
            out["per_case_cap_use"][:, t] = result.uncapped_fen.max(axis=1) / limit
        if setup.annual_cap_fen is not None:
            held = np.where(cells > 0, ytd[:, :cohorts].reshape(size, cohorts * 2, bands), 0)
            out["annual_cap_use"][:, t] = held.max(axis=(1, 2)) / setup.annual_cap_fen
        band_charge[:, t] = result.charge_fen
        band_members[:, t] = members_band
        band_paid += charged_band
        band_benefit += aid_band
    out["band_charge_fen"] = band_charge
    out["band_members"] = band_members
    out["band_paid_fen"] = band_paid
    out["band_benefit_fen"] = band_benefit
    return out


# --- many batches ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimulationResult:
    setup: Setup
    settings: SimulationSettings
    #: name -> array; per-period series are (scenarios, periods); see INT_SERIES / FLOAT_SERIES,
    #: plus band_charge_fen and band_members (scenarios, periods, bands), band_paid_fen and
    #: band_benefit_fen (scenarios, bands): totals over the horizon.
    arrays: dict[str, NDArray[Any]]

    def __getitem__(self, name: str) -> NDArray[Any]:
        return self.arrays[name]

    def percentiles(self, name: str, q: tuple[int, ...] = (5, 50, 95)) -> NDArray[Any]:
        """Per period (len(q), periods); integer series stay integers (observed values)."""
        return np.asarray(np.percentile(self.arrays[name], q, axis=0, method="inverted_cdf"))


def batches(scenarios: int) -> list[tuple[int, int]]:
    return [
        (b, min(BATCH_SIZE, scenarios - b * BATCH_SIZE))
        for b in range(math.ceil(scenarios / BATCH_SIZE))
    ]


def simulate(
    rules: PlanRules,
    model: ForecastModel,
    settings: SimulationSettings,
    on_batch: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Run `settings.scenarios` scenarios; `on_batch(n)` is called as each batch of n finishes."""
    setup = build_setup(rules, model, settings)
    plan = batches(settings.scenarios)
    parts: dict[int, dict[str, NDArray[Any]]] = {}
    if settings.workers == 1 or len(plan) < MIN_BATCHES_FOR_WORKERS:
        for batch, size in plan:
            parts[batch] = run_batch(setup, settings.seed, batch, size)
            if on_batch:
                on_batch(size)
    else:
        workers = min(settings.workers, len(plan))
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            futures = {
                pool.submit(run_batch, setup, settings.seed, batch, size): (batch, size)
                for batch, size in plan
            }
            for future in as_completed(futures):
                batch, size = futures[future]
                parts[batch] = future.result()
                if on_batch:
                    on_batch(size)
    ordered = [parts[batch] for batch, _ in plan]
    arrays = {name: np.concatenate([part[name] for part in ordered]) for name in ordered[0]}
    return SimulationResult(setup=setup, settings=settings, arrays=arrays)
