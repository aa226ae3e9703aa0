"""`mutualaid simulate` and `mutualaid calibrate`: forecasts of members, cases and shares."""

from __future__ import annotations

import csv
import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from datetime import time as time_of_day
from pathlib import Path

import numpy as np
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mutualaid.cli.common import console, context, err_console, friendly_errors
from mutualaid.domain.errors import DomainError
from mutualaid.domain.money import format_yuan
from mutualaid.domain.plans import PlanRules, parse_plan_toml
from mutualaid.domain.sharing import SharingRule
from mutualaid.forecasts.calibration import CALIBRATION_PERIODS, CalibrationRow
from mutualaid.forecasts.calibration import calibrate as run_calibration
from mutualaid.forecasts.models import (
    DEFAULT_MODEL_TOML,
    ForecastModel,
    default_model,
    parse_model_toml,
)
from mutualaid.forecasts.outputs import (
    expected_fairness,
    simulated_fairness,
    write_bands_csv,
    write_charts,
    write_periods_csv,
    year_totals_yuan,
)
from mutualaid.forecasts.simulation import MAX_PERIODS, SimulationResult, SimulationSettings
from mutualaid.forecasts.simulation import simulate as run_simulation
from mutualaid.forecasts.starting_points import StartingPoint, entry_age_mix
from mutualaid.plan_files import read_plan_file
from mutualaid.services.forecasts.live_plans import live_forecast_inputs

DEFAULT_PLAN = "xhb-main.toml"
MAX_SCENARIOS = 100_000


def _default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _load(plan_file: Path | None, model_file: Path | None) -> tuple[PlanRules, ForecastModel]:
    text = plan_file.read_text(encoding="utf-8") if plan_file else read_plan_file(DEFAULT_PLAN)
    rules = parse_plan_toml(text)
    model = (
        parse_model_toml(model_file.read_text(encoding="utf-8")) if model_file else default_model()
    )
    return rules, model


@contextmanager
def _progress(total: int, what: str) -> Iterator[Progress]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as progress:
        progress.add_task(what, total=total)
        yield progress


def _advance(progress: Progress) -> Callable[[int], None]:
    task = progress.task_ids[0]

    def advance(count: int) -> None:
        progress.advance(task, count)

    return advance


def _peak_memory_text() -> str:
    try:
        import resource
    except ImportError:  # not on Linux/macOS
        return "unknown"
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    text = f"{own:,.0f} MiB"
    if workers:
        text += f" (largest worker process {workers:,.0f} MiB)"
    return text


def _millions(value: float) -> str:
    return f"{value / 1e6:,.2f}M"


def _yuan(fen: float) -> str:
    return format_yuan(round(fen), grouping=True)


def _summary(result: SimulationResult, rules: PlanRules, elapsed: float) -> None:
    setup = result.setup
    settings = result.settings
    dates = setup.publicity_on
    console.print(
        f"[bold]{rules.code}[/bold]: {settings.rule} sharing, {setup.periods} periods "
        f"({dates[0]} to {dates[-1]}), {settings.scenarios:,} scenarios, seed {settings.seed}; "
        f"{elapsed:,.1f} s, peak memory {_peak_memory_text()}"
    )
    members = result.percentiles("members")
    cases = result.percentiles("cases")
    share = result.percentiles("share_fen")
    sponsor = result.percentiles("sponsor_fen")
    cap = result.percentiles("annual_cap_use")
    table = Table(
        "period",
        "publicity",
        "members",
        "cases (5–95%)",
        "share, yuan (5–95%)",
        "sponsor, yuan",
        "annual cap used",
        title="Per period (median and 5–95% band)",
    )
    step = max(1, setup.periods // 12)
    shown = sorted({*range(0, setup.periods, step), setup.periods - 1})
    for t in shown:
        table.add_row(
            str(t + 1),
            str(dates[t]),
            _millions(float(members[1, t])),
            f"{int(cases[1, t]):,} ({int(cases[0, t]):,}–{int(cases[2, t]):,})",
            f"{_yuan(float(share[1, t]))} ({_yuan(float(share[0, t]))}–{_yuan(float(share[2, t]))})",
            _yuan(float(sponsor[1, t])),
            f"{float(cap[1, t]):.0%}",
        )
    console.print(table)

    years = Table(
        "year",
        "shares of a full-year member, yuan (5–95%)",
        "cases",
        "aid, yuan",
        "sponsor, yuan",
        title="Per calendar year (median)",
    )
    totals = year_totals_yuan(result)
    for year, values in totals.items():
        index = [t for t, day in enumerate(dates) if day.year == year]
        low, mid, high = np.percentile(values, [5, 50, 95])
        years.add_row(
            str(year),
            f"{mid:,.2f} ({low:,.2f}–{high:,.2f})",
            f"{np.median(result['cases'][:, index].sum(axis=1)):,.0f}",
            _yuan(float(np.median(result["aid_fen"][:, index].sum(axis=1)))),
            _yuan(float(np.median(result["sponsor_fen"][:, index].sum(axis=1)))),
        )
    console.print(years)

    fairness = Table(
        "age band",
        "members (last period)",
        "expected benefit, yuan/year",
        *(f"{rule} (expected)" for rule in SharingRule),
        f"{settings.rule} (simulated)",
        title="Fairness by age band: contribution ÷ (benefit × (1 + fee)); "
        "1 is fair, above 1 the band subsidises the others",
    )
    with warnings.catch_warnings():
        # A band that paid nothing in every scenario (a small live plan) has no ratio: "—".
        warnings.simplefilter("ignore", RuntimeWarning)
        simulated = np.nanmedian(simulated_fairness(result), axis=0) / (1 + setup.fee_bp / 10_000)
    periods_per_year = 24
    for a, row in enumerate(expected_fairness(result)):
        ratios = [row.ratio(rule) for rule in SharingRule]
        fairness.add_row(
            row.key,
            f"{row.count:,}",
            f"{float(row.benefit_fen) * periods_per_year / 100:,.2f}",
            *("—" if ratio is None else f"{float(ratio):.2f}" for ratio in ratios),
            "—" if np.isnan(simulated[a]) else f"{simulated[a]:.2f}",
        )
    console.print(fairness)


@friendly_errors
def simulate(
    plan_code: str | None = typer.Option(
        None,
        "--plan",
        help="A plan in the database (its code): the forecast starts from its members, claim and "
        "leaving rates and surplus today",
    ),
    plan_file: Path | None = typer.Option(
        None,
        "--plan-file",
        help="A plan file (TOML), simulated from its launch; default: the shipped Xiang Hu Bao "
        "main plan (the Xiang Hu Bao history preset)",
    ),
    model_file: Path | None = typer.Option(
        None,
        "--model",
        help="A forecast model (TOML); default: the calibrated Xiang Hu Bao model "
        "(see --print-model)",
    ),
    periods: int = typer.Option(80, min=1, max=MAX_PERIODS, help="How many periods"),
    scenarios: int = typer.Option(1000, min=1, max=MAX_SCENARIOS, help="How many random scenarios"),
    seed: int = typer.Option(1, min=0, help="Random seed: the same seed gives the same results"),
    rule: SharingRule | None = typer.Option(
        None, "--rule", help="Sharing rule; default: the plan's sharing_rule"
    ),
    start_on: datetime | None = typer.Option(
        None,
        "--start-on",
        formats=["%Y-%m-%d"],
        help="Day 0 of the join ramp (the plan's launch); default: the model's joins.start_on",
    ),
    out: Path = typer.Option(
        Path("forecast"), "--out", help="Directory for the CSV files and charts"
    ),
    charts: bool = typer.Option(True, "--charts/--no-charts", help="Write PNG and SVG charts"),
    workers: int = typer.Option(
        _default_workers(), min=1, max=64, help="Worker processes (results do not depend on it)"
    ),
    print_model: bool = typer.Option(
        False, "--print-model", help="Print the default model (TOML) and exit"
    ),
) -> None:
    """Simulate a plan: members, cases, aid, fee, shares, caps and sponsor cost per period, with
    percentiles over many seeded random scenarios; writes CSV files and charts to --out."""
    if print_model:
        typer.echo(DEFAULT_MODEL_TOML, nl=False)  # raw: no wrapping, ready to save
        return
    if plan_code and (plan_file or start_on):
        raise DomainError(
            "invalid_start",
            "a plan in the database starts today: drop --plan-file and --start-on",
            "--plan",
        )
    rules, model = _load(plan_file, model_file)
    start = StartingPoint()
    if plan_code:
        rules, live = live_forecast_inputs(context(), plan_code, model)
        model, start, start_on = (
            live.model,
            live.start,
            datetime.combine(live.today.today, time_of_day()),
        )
        console.print(
            f"{plan_code} on {live.today.today}: {live.today.member_count:,} members, "
            f"{live.today.observed_cases} approved claims and {live.today.observed_leavers} "
            f"leavers in the last {live.today.window_days} days"
        )
    else:
        model = entry_age_mix(model, rules)
    settings = SimulationSettings(
        periods=periods,
        scenarios=scenarios,
        seed=seed,
        rule=rule or SharingRule(rules.sharing_rule),
        start_on=start_on.date() if start_on else None,
        workers=workers,
        start=start,
    )
    if charts:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise DomainError(
                "charts_unavailable",
                "charts need matplotlib (pip install matplotlib), or pass --no-charts",
                "--charts",
            ) from None
    out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    with _progress(scenarios, "scenarios") as progress:
        result = run_simulation(rules, model, settings, _advance(progress))
    elapsed = time.perf_counter() - began
    written = [
        write_periods_csv(result, out / "periods.csv"),
        write_bands_csv(result, out / "bands.csv"),
    ]
    if charts:
        written += write_charts(result, out)
    _summary(result, rules, elapsed)
    console.print("wrote " + ", ".join(str(path) for path in written))


def _figure(value: float, unit: str) -> str:
    if unit == "members":
        return _millions(value)
    if unit == "per member-year":
        return f"{value:.2e}"
    if unit == "yuan" and abs(value) >= 1e6:
        return f"{value / 1e9:,.2f}bn"
    if unit == "yuan":
        return f"{value:,.2f}"
    return f"{value:,.0f}"


def _calibration_table(rows: list[CalibrationRow]) -> Table:
    table = Table(
        "figure",
        "published",
        "simulated (median)",
        "5–95%",
        "error",
        title="The model against Xiang Hu Bao's published figures",
    )
    for row in rows:
        unit = row.target.unit
        table.add_row(
            row.target.label,
            _figure(row.target.published, unit),
            _figure(row.median, unit),
            f"{_figure(row.p5, unit)}–{_figure(row.p95, unit)}",
            f"{row.relative_error:+.1%}",
        )
    return table


@friendly_errors
def calibrate(
    model_file: Path | None = typer.Option(
        None, "--model", help="A forecast model (TOML) to check; default: the shipped model"
    ),
    scenarios: int = typer.Option(200, min=1, max=MAX_SCENARIOS, help="How many random scenarios"),
    seed: int = typer.Option(1, min=0, help="Random seed"),
    workers: int = typer.Option(_default_workers(), min=1, max=64, help="Worker processes"),
    out: Path | None = typer.Option(None, "--out", help="Also write calibration.csv there"),
) -> None:
    """Run the model over Xiang Hu Bao's timeline (launch 16 Oct 2018, first shares Jan 2019, to
    the end of 2021) and compare it with the published figures."""
    rules, model = _load(None, model_file)
    began = time.perf_counter()
    with _progress(scenarios, "scenarios") as progress:
        _, rows = run_calibration(
            rules,
            model,
            scenarios=scenarios,
            seed=seed,
            workers=workers,
            on_batch=_advance(progress),
        )
    elapsed = time.perf_counter() - began
    console.print(_calibration_table(rows))
    console.print(
        f"{CALIBRATION_PERIODS} periods, {scenarios:,} scenarios, seed {seed}: {elapsed:,.1f} s"
    )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        path = out / "calibration.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                ["key", "figure", "published", "p5", "median", "p95", "relative_error", "source"]
            )
            for row in rows:
                writer.writerow(
                    [
                        row.target.key,
                        row.target.label,
                        f"{row.target.published:.6g}",
                        f"{row.p5:.6g}",
                        f"{row.median:.6g}",
                        f"{row.p95:.6g}",
                        f"{row.relative_error:.4f}",
                        row.target.source,
                    ]
                )
        console.print(f"wrote {path}")
