"""`mutualaid report PLAN`: the operator's report as tables, JSON or CSV, with charts on request."""

from __future__ import annotations

import csv
import dataclasses
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from mutualaid.cli.common import console, context, err_console, friendly_errors, print_json
from mutualaid.domain.errors import DomainError
from mutualaid.domain.money import format_yuan
from mutualaid.forecasts.models import parse_model_toml
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.reports.reports import ALL_SECTIONS, PlanReport, Section, plan_report

FORMATS = ("table", "json", "csv")


@dataclass(frozen=True, slots=True)
class ReportTable:
    """One section as a table: raw values (fen, rates as fractions) for CSV, shown for people."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]]


def _flatten(item: Any) -> dict[str, Any]:
    """A result row as columns; a per-rule mapping becomes one column per rule."""
    flat: dict[str, Any] = {}
    for name, value in dataclasses.asdict(item).items():
        if isinstance(value, dict):
            flat.update({f"{name}_{key}": inner for key, inner in value.items()})
        else:
            flat[name] = value
    return flat


def _listing(
    name: str, title: str, items: list[Any] | None, omit: tuple[str, ...] = ()
) -> ReportTable | None:
    if items is None:
        return None
    flat = [{k: v for k, v in _flatten(item).items() if k not in omit} for item in items]
    columns = list(flat[0]) if flat else []
    return ReportTable(name, title, columns, [list(row.values()) for row in flat])


def _figures(name: str, title: str, item: Any) -> ReportTable | None:
    if item is None:
        return None
    return ReportTable(
        name, title, ["figure", "value"], [[k, v] for k, v in _flatten(item).items()]
    )


def report_tables(report: PlanReport) -> list[ReportTable]:
    fairness = report.fairness
    tables = [
        _listing("membership", "Membership flows per month", report.membership),
        _listing("shares", "Share history per period", report.shares),
        _listing("cases_by_illness", "Cases by illness", report.cases_by_illness),
        _listing(
            "cases_by_age_band",
            "Cases by age at diagnosis",
            report.cases_by_age_band,
            omit=("name_zh", "name_en"),
        ),
        _listing("cases_by_province", "Cases by province", report.cases_by_province),
        _listing("decision_times", "Days from report to decision", report.decision_times),
        _figures("objections", "Objections", report.objections),
        _figures("juries", "Juries", report.juries),
        _figures("investigations", "Investigations", report.investigations),
        _listing(
            "fairness",
            "Fairness by age band, per member and year "
            f"({fairness.source} incidence, fee {fairness.fee_bp / 100:g}%, plan rule "
            f"{fairness.plan_rule})"
            if fairness
            else "",
            fairness.bands if fairness else None,
        ),
    ]
    return [t for t in tables if t is not None]


def _shown(column: str, value: Any, row: list[Any]) -> str:
    if value is None:
        return "—"
    figure = row[0] if column == "value" else column
    if isinstance(value, float) and ("rate" in figure or "ratio" in figure):
        return f"{value:.2%}" if "rate" in figure else f"{value:.3f}"
    if isinstance(value, int) and "_fen" in str(figure):
        return format_yuan(value, symbol=True, grouping=True)
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _print_tables(report: PlanReport, tables: list[ReportTable]) -> None:
    window = f"{report.from_on or 'the start'} to {report.to_on}"
    console.print(
        f"[bold]{report.plan_code}[/bold] {report.name_en} · {window} ({report.time_zone})"
    )
    for table in tables:
        if not table.rows:
            console.print(f"\n[bold]{table.title}[/bold]: nothing in this window")
            continue
        shown = Table(*table.columns, title=table.title, title_justify="left")
        for row in table.rows:
            shown.add_row(*(_shown(c, v, row) for c, v in zip(table.columns, row, strict=True)))
        console.print(shown)


def _write_csv(tables: list[ReportTable]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    for index, table in enumerate(tables):
        if index:
            writer.writerow([])
        writer.writerow(["section", *table.columns])
        for row in table.rows:
            writer.writerow([table.name, *("" if v is None else v for v in row)])


@friendly_errors
def report(
    plan: str = typer.Argument(..., help="Plan code, e.g. xhb-main"),
    from_on: datetime | None = typer.Option(
        None,
        "--from",
        formats=["%Y-%m-%d"],
        help="First day of the report (plan's time zone); default: the plan's first day",
    ),
    to_on: datetime | None = typer.Option(
        None, "--to", formats=["%Y-%m-%d"], help="Last day of the report; default: today"
    ),
    output: str = typer.Option(
        "table",
        "--format",
        help="table (for people), json, or csv (one block per section, money in integer fen)",
    ),
    section: list[Section] | None = typer.Option(
        None, "--section", help="Only this section (repeat for several); default: all"
    ),
    charts: Path | None = typer.Option(
        None, "--charts", help="Also write the charts (PNG and SVG) to this directory"
    ),
    model_file: Path | None = typer.Option(
        None,
        "--model",
        help="Forecast model (TOML) whose incidence the fairness section uses "
        "while the plan has too few cases of its own; default: the calibrated model",
    ),
) -> None:
    """Membership flows, cases by illness, age band and province, share history, time to decision,
    objection and jury overturn rates, investigation cost, and the fairness of each sharing rule
    by age band.

    Money is in yuan in tables and integer fen in JSON and CSV; rates are fractions (0.25 = 25%).
    """
    if output not in FORMATS:
        raise DomainError("invalid_format", f"--format is one of {', '.join(FORMATS)}", "--format")
    model = parse_model_toml(model_file.read_text(encoding="utf-8")) if model_file else None
    result = plan_report(
        context(),
        SYSTEM_ACTOR,
        plan,
        from_on=from_on.date() if from_on else None,
        to_on=to_on.date() if to_on else None,
        sections=section or ALL_SECTIONS,
        model=model,
    )
    tables = report_tables(result)
    if output == "json":
        print_json(dataclasses.asdict(result))
    elif output == "csv":
        _write_csv(tables)
    else:
        _print_tables(result, tables)
    if charts is not None:
        from mutualaid.cli.report_charts import write_report_charts

        written = write_report_charts(result, charts)
        err_console.print(f"{len(written)} chart files written to {charts}")
