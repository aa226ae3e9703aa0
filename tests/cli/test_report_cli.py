"""`mutualaid report`: the operator's report at the terminal, as JSON and CSV, and its charts."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from xml.etree import ElementTree

from tests.builders.reports import build_population
from tests.cli.cli import assert_clean_failure, mutualaid, said

from mutualaid.clock import FixedClock
from mutualaid.services.context import ServiceContext

WINDOW = ("--from", "2026-01-01", "--to", "2026-03-01")


def test_the_report_prints_every_section_as_tables_for_people(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    build_population(ctx, clock)
    result = mutualaid("report", "xhb-main", *WINDOW)
    assert result.exit_code == 0, result.output
    text = said(result.output)
    for title in (
        "Membership flows per month",
        "Share history per period",
        "Cases by illness",
        "Cases by province",
        "Days from report to decision",
        "Objections",
        "Juries",
        "Investigations",
        "Fairness by age band",
    ):
        assert title in text, title
    assert "¥300,000.00" in text  # the approved tumour case, in yuan
    assert "overturn_rate │ 50.00%" in text and "cost_per_case_fen │ ¥124.48" in text


def test_json_and_csv_carry_the_same_figures_in_integer_fen(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    build_population(ctx, clock)
    as_json = mutualaid("report", "xhb-main", *WINDOW, "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(as_json.output)
    assert [m["active_at_end"] for m in body["membership"]] == [4, 4, 4]
    assert body["investigations"]["cost_fen"] == 37_345
    assert body["juries"]["overturn_rate"] == 0.5

    as_csv = mutualaid(
        "report",
        "xhb-main",
        *WINDOW,
        "--format",
        "csv",
        "--section",
        "cases",
        "--section",
        "shares",
    )
    assert as_csv.exit_code == 0, as_csv.output
    rows = [row for row in csv.reader(io.StringIO(as_csv.output)) if row]
    sections = {row[0] for row in rows}
    assert sections == {
        "section",
        "shares",
        "cases_by_illness",
        "cases_by_age_band",
        "cases_by_province",
    }
    illness = next(row for row in rows if row[0] == "cases_by_illness" and row[1] == "CI01")
    assert illness[-3:] == ["3", "1", "30000000"]
    shares = [row for row in rows if row[0] == "shares"]
    assert [row[1] for row in shares] == ["2026-01-07", "2026-02-07"]


def test_charts_are_written_as_png_and_svg(
    ctx: ServiceContext, clock: FixedClock, tmp_path: Path
) -> None:
    build_population(ctx, clock)
    out = tmp_path / "charts"
    result = mutualaid("report", "xhb-main", *WINDOW, "--charts", str(out), "--format", "json")
    assert result.exit_code == 0, result.output
    stems = {
        "membership",
        "shares",
        "decisions",
        "cases_by_illness",
        "cases_by_age_band",
        "cases_by_province",
        "fairness",
    }
    assert {p.name for p in out.iterdir()} == {f"{s}.{x}" for s in stems for x in ("png", "svg")}
    assert (out / "fairness.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert ElementTree.parse(out / "membership.svg").getroot().tag.endswith("svg")
    again = tmp_path / "again"
    mutualaid("report", "xhb-main", *WINDOW, "--charts", str(again), "--format", "json")
    assert (again / "membership.svg").read_bytes() == (out / "membership.svg").read_bytes()


def test_bad_requests_are_refused_with_a_message_and_an_exit_code(ctx: ServiceContext) -> None:
    from tests.factories import publish_demo_plans

    publish_demo_plans(ctx)
    unknown = mutualaid("report", "no-such-plan")
    assert unknown.exit_code == 3 and "plan_not_found" in unknown.output
    backwards = mutualaid("report", "xhb-main", "--from", "2026-03-02", "--to", "2026-03-01")
    assert backwards.exit_code == 2 and "invalid_window (from_on)" in said(backwards.output)
    wrong = mutualaid("report", "xhb-main", "--format", "xml")
    assert wrong.exit_code == 2 and "--format is one of table, json, csv" in said(wrong.output)
    for result in (unknown, backwards, wrong):
        assert_clean_failure(result)


def test_help_explains_the_report() -> None:
    text = said(mutualaid("report", "--help").output)
    assert (
        "objection and jury overturn rates" in text and "--charts" in text and "--section" in text
    )
