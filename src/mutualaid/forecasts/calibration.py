"""How close the default model comes to Xiang Hu Bao's published figures.

The timeline: launch on 16 October 2018, two periods a month (publicity on the 7th and 21st), and
79 periods to the plan's close in January 2022. Members paid shares from January 2019 to November
2021: Ant Group paid every case published before 2019, and the platform paid the December 2021 and
January 2022 periods (the plan announced its close on 8 December 2021), so those periods charge
nothing (`SimulationSettings.sponsored`). 186,961 is the final count of cases, in January 2022.
Each target is computed the same way from every scenario; the table reports the median, the 5–95%
band and the median's relative error against the published figure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray

from mutualaid.domain.plans import PlanRules
from mutualaid.forecasts.models import ForecastModel
from mutualaid.forecasts.simulation import SimulationResult, SimulationSettings, simulate

LAUNCH_ON = date(2018, 10, 16)
#: Publicity days from 21 Oct 2018 to 21 Jan 2022.
CALIBRATION_PERIODS = 79
#: Periods whose cases the platform paid: before the first shares, and after the close was announced.
SPONSORED = ((LAUNCH_ON, date(2018, 12, 31)), (date(2021, 12, 1), date(2022, 1, 31)))

Metric = Callable[[SimulationResult], NDArray[np.float64]]


def _periods(result: SimulationResult, keep: Callable[[date], bool]) -> list[int]:
    return [t for t, day in enumerate(result.setup.publicity_on) if keep(day)]


def _yearly_share_yuan(year: int) -> Metric:
    """What a member who shared in every period of `year` paid (the annual cap applied)."""

    def metric(result: SimulationResult) -> NDArray[np.float64]:
        index = _periods(result, lambda d: d.year == year)
        total = result["share_fen"][:, index].sum(axis=1)
        cap = result.setup.annual_cap_fen
        return np.asarray((np.minimum(total, cap) if cap is not None else total) / 100.0)

    return metric


def _january_2019(name: str, how: str, scale: float = 1.0) -> Metric:
    def metric(result: SimulationResult) -> NDArray[np.float64]:
        index = _periods(result, lambda d: (d.year, d.month) == (2019, 1))
        values = result[name][:, index]
        picked = values.sum(axis=1) if how == "sum" else values[:, -1]
        return np.asarray(picked / scale, dtype=np.float64)

    return metric


def _peak_members(result: SimulationResult) -> NDArray[np.float64]:
    return np.asarray(result["members"].max(axis=1), dtype=np.float64)


def _members_nov_2019(result: SimulationResult) -> NDArray[np.float64]:
    index = _periods(result, lambda d: (d.year, d.month) == (2019, 11))
    return np.asarray(result["members"][:, index[-1]], dtype=np.float64)


def _members_end_2021(result: SimulationResult) -> NDArray[np.float64]:
    index = _periods(result, lambda d: d.year == 2021)
    return np.asarray(result["members"][:, index[-1]], dtype=np.float64)


def _late_2021_share_yuan(result: SimulationResult) -> NDArray[np.float64]:
    index = _periods(result, lambda d: (2021, 10) <= (d.year, d.month) <= (2021, 11))
    return np.asarray(result["share_fen"][:, index].mean(axis=1) / 100.0)


def _cases_per_period_2021(result: SimulationResult) -> NDArray[np.float64]:
    index = _periods(result, lambda d: d.year == 2021)
    return np.asarray(result["cases"][:, index].mean(axis=1), dtype=np.float64)


def _leavers_per_month_2021(result: SimulationResult) -> NDArray[np.float64]:
    index = _periods(result, lambda d: d.year == 2021)
    return np.asarray(result["leavers"][:, index].sum(axis=1) / 12.0, dtype=np.float64)


def _claims_per_member_year(first: int, last: int) -> Metric:
    def metric(result: SimulationResult) -> NDArray[np.float64]:
        index = _periods(result, lambda d: first <= d.year <= last)
        cases = result["cases"][:, index].sum(axis=1)
        member_years = result["members"][:, index].sum(axis=1) / 24.0
        return np.asarray(cases / member_years, dtype=np.float64)

    return metric


def _total(name: str, scale: float = 1.0) -> Metric:
    def metric(result: SimulationResult) -> NDArray[np.float64]:
        return np.asarray(result[name].sum(axis=1) / scale, dtype=np.float64)

    return metric


@dataclass(frozen=True, slots=True)
class Target:
    key: str
    label: str
    published: float
    unit: str
    source: str
    metric: Metric


TARGETS: tuple[Target, ...] = (
    Target(
        "jan_2019_members",
        "members sharing in Jan 2019",
        23e6,
        "members",
        "first period, Jan 2019",
        _january_2019("members", "last"),
    ),
    Target(
        "jan_2019_cases",
        "cases published in Jan 2019",
        2,
        "cases",
        "first period, Jan 2019",
        _january_2019("cases", "sum"),
    ),
    Target(
        "jan_2019_share",
        "share in Jan 2019",
        0.03,
        "yuan",
        "first period, Jan 2019",
        _january_2019("share_fen", "sum", 100.0),
    ),
    Target(
        "total_2019",
        "shares paid in 2019 (full-year member)",
        29,
        "yuan",
        "2019 total",
        _yearly_share_yuan(2019),
    ),
    Target(
        "total_2020",
        "shares paid in 2020 (full-year member)",
        91,
        "yuan",
        "2020 total",
        _yearly_share_yuan(2020),
    ),
    Target(
        "members_nov_2019",
        "members in November 2019",
        100e6,
        "members",
        "~100M in 13 months",
        _members_nov_2019,
    ),
    Target("peak_members", "membership peak", 107e6, "members", "peak ~107M", _peak_members),
    Target(
        "members_end_2021",
        "members at the end of 2021",
        75e6,
        "members",
        "~75M at the end of 2021",
        _members_end_2021,
    ),
    Target(
        "share_late_2021",
        "share per period, Oct-Nov 2021",
        7,
        "yuan",
        "~7 RMB a period, late 2021",
        _late_2021_share_yuan,
    ),
    Target(
        "cases_2021",
        "cases per period in 2021",
        3500,
        "cases",
        "3,000-4,000 per period",
        _cases_per_period_2021,
    ),
    Target(
        "leavers_2021",
        "members leaving per month in 2021",
        2e6,
        "members",
        "~2M a month in 2021",
        _leavers_per_month_2021,
    ),
    Target(
        "claim_rate_2019",
        "approved claims per member-year, 2019",
        2.5e-4,
        "per member-year",
        "~2-3×10⁻⁴ in year one",
        _claims_per_member_year(2019, 2019),
    ),
    Target(
        "claim_rate",
        "approved claims per member-year, 2019-2021",
        7e-4,
        "per member-year",
        "~7×10⁻⁴ overall",
        _claims_per_member_year(2019, 2021),
    ),
    Target(
        "cases_total",
        "cases aided, to the close (Jan 2022)",
        186_961,
        "cases",
        "186,961 aided, final count of Jan 2022",
        _total("cases"),
    ),
    Target(
        "collected_total",
        "shares collected, Jan 2019 - Nov 2021",
        25.9e9,
        "yuan",
        "25.9bn RMB collected",
        _total("charged_fen", 100.0),
    ),
)


@dataclass(frozen=True, slots=True)
class CalibrationRow:
    target: Target
    p5: float
    median: float
    p95: float

    @property
    def relative_error(self) -> float:
        return (self.median - self.target.published) / self.target.published


def compare(result: SimulationResult) -> list[CalibrationRow]:
    rows: list[CalibrationRow] = []
    for target in TARGETS:
        values = target.metric(result)
        p5, median, p95 = np.percentile(values, [5, 50, 95])
        rows.append(CalibrationRow(target, float(p5), float(median), float(p95)))
    return rows


def calibrate(
    rules: PlanRules,
    model: ForecastModel,
    *,
    scenarios: int,
    seed: int,
    workers: int = 1,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[SimulationResult, list[CalibrationRow]]:
    """Run `model` over Xiang Hu Bao's timeline and compare it with the published figures."""
    settings = SimulationSettings(
        periods=CALIBRATION_PERIODS,
        scenarios=scenarios,
        seed=seed,
        start_on=LAUNCH_ON,
        workers=workers,
        sponsored=SPONSORED,
    )
    result = simulate(rules, model, settings, on_batch)
    return result, compare(result)
