"""What a simulation leaves behind: CSV tables (percentiles per period), charts (PNG and SVG) and
the figures a summary shows (year totals, fairness by age band)."""

from __future__ import annotations

import csv
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mutualaid.domain.sharing import FairnessRow, Outcome, Risk, RiskClass, fairness_report
from mutualaid.forecasts.simulation import FLOAT_SERIES, INT_SERIES, SimulationResult

QUANTILES = (5, 50, 95)


def _cell(value: float | int | np.generic) -> str:
    if isinstance(value, np.integer | int):
        return str(int(value))
    return f"{float(value):.6g}"


def write_periods_csv(result: SimulationResult, path: Path) -> Path:
    """One row per period: every series' 5th, 50th and 95th percentile over the scenarios."""
    names = INT_SERIES + FLOAT_SERIES
    bands = {name: result.percentiles(name, QUANTILES) for name in names}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["period", "publicity_on", *(f"{name}_p{q}" for name in names for q in QUANTILES)]
        )
        for t, day in enumerate(result.setup.publicity_on):
            writer.writerow(
                [
                    t + 1,
                    day.isoformat(),
                    *(_cell(bands[name][i, t]) for name in names for i in range(len(QUANTILES))),
                ]
            )
    return path


def write_bands_csv(result: SimulationResult, path: Path) -> Path:
    """One row per period and age band: members and the band's charge per member (percentiles)."""
    charge = np.percentile(result["band_charge_fen"], QUANTILES, axis=0, method="inverted_cdf")
    members = np.percentile(result["band_members"], QUANTILES, axis=0, method="inverted_cdf")
    labels = result.setup.band_labels()
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "period",
                "publicity_on",
                "age_band",
                *(f"members_p{q}" for q in QUANTILES),
                *(f"charge_fen_p{q}" for q in QUANTILES),
            ]
        )
        for t, day in enumerate(result.setup.publicity_on):
            for a, label in enumerate(labels):
                writer.writerow(
                    [
                        t + 1,
                        day.isoformat(),
                        label,
                        *(_cell(members[i, t, a]) for i in range(len(QUANTILES))),
                        *(_cell(charge[i, t, a]) for i in range(len(QUANTILES))),
                    ]
                )
    return path


def year_totals_yuan(result: SimulationResult) -> dict[int, NDArray[np.float64]]:
    """Per calendar year, per scenario: the shares of a member present all year (annual cap
    applied), in yuan."""
    years: dict[int, list[int]] = {}
    for t, day in enumerate(result.setup.publicity_on):
        years.setdefault(day.year, []).append(t)
    cap = result.setup.annual_cap_fen
    totals: dict[int, NDArray[np.float64]] = {}
    for year, index in years.items():
        total = result["share_fen"][:, index].sum(axis=1)
        totals[year] = np.asarray((np.minimum(total, cap) if cap is not None else total) / 100.0)
    return totals


def simulated_fairness(result: SimulationResult) -> NDArray[np.float64]:
    """Per scenario and band: what the band paid over the horizon per fen of aid it received
    (NaN where it received none)."""
    paid = result["band_paid_fen"].astype(np.float64)
    benefit = result["band_benefit_fen"].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(benefit > 0, paid / np.where(benefit > 0, benefit, 1.0), np.nan)


def expected_fairness(result: SimulationResult, period: int | None = None) -> list[FairnessRow]:
    """The exact fairness report (`domain.sharing.fairness_report`) for the median population of
    `period` (default: the last), with the rule's per-period probabilities."""
    t = result.setup.periods - 1 if period is None else period
    members = np.percentile(result["band_members"][:, t], 50, axis=0, method="inverted_cdf")
    probabilities = result.setup.rule_probabilities[t]
    classes: list[RiskClass] = []
    for a, label in enumerate(result.setup.band_labels()):
        outcomes = tuple(
            Outcome(
                int(result.setup.payouts[a, k]),
                Fraction(float(probabilities[a, k])).limit_denominator(10**12),
            )
            for k in range(len(result.setup.tiers))
            if result.setup.payouts[a, k] > 0
        )
        classes.append(RiskClass(label, int(members[a]), Risk(outcomes)))
    return fairness_report(classes, result.setup.fee_bp)


# --- charts ---------------------------------------------------------------------------------------


def pyplot() -> Any:
    """matplotlib's pyplot, drawing off screen, with SVG ids that do not change from run to run."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    plt.rcParams["svg.hashsalt"] = "mutualaid"
    return plt


def save_figure(plt: Any, figure: Any, directory: Path, stem: str) -> list[Path]:
    """`stem`.png and `stem`.svg in `directory`, then the figure closed."""
    written = []
    for suffix in ("png", "svg"):
        path = directory / f"{stem}.{suffix}"
        # No date in the files: the same figures give the same bytes.
        metadata = {"Date": None} if suffix == "svg" else {"Software": None}
        figure.savefig(path, dpi=110, metadata=metadata)
        written.append(path)
    plt.close(figure)
    return written


def write_charts(result: SimulationResult, directory: Path) -> list[Path]:
    """members.{png,svg}, share.{png,svg}, cases.{png,svg}: the median with its 5–95% band."""
    plt = pyplot()
    dates = np.array(result.setup.publicity_on, dtype="datetime64[D]")
    charts = (
        ("members", "members", 1e6, "members (millions)"),
        ("share", "share_fen", 100.0, "share per member per period (yuan)"),
        ("cases", "cases", 1.0, "cases published per period"),
    )
    written: list[Path] = []
    rule = result.settings.rule
    scenarios = result.settings.scenarios
    for stem, name, scale, label in charts:
        low, median, high = (
            np.asarray(row, dtype=np.float64) / scale for row in result.percentiles(name, QUANTILES)
        )
        figure, axes = plt.subplots(figsize=(9, 4.5), layout="constrained")
        axes.fill_between(dates, low, high, alpha=0.25, label="5–95% of scenarios")
        axes.plot(dates, median, linewidth=1.8, label="median")
        axes.set_ylabel(label)
        axes.set_title(f"{label} — {rule} sharing, {scenarios} scenarios")
        axes.grid(alpha=0.3)
        axes.legend(loc="upper left")
        figure.autofmt_xdate()
        written += save_figure(plt, figure, directory, stem)
    return written
