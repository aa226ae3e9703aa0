"""`mutualaid simulate` and `mutualaid calibrate`: offline forecasts, files and clear refusals."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.cli.cli import assert_clean_failure, mutualaid
from tests.factories import members, publish_demo_plans

from mutualaid.clock import FixedClock
from mutualaid.forecasts.models import parse_model_toml
from mutualaid.plan_files import read_plan_file
from mutualaid.services.context import ServiceContext

SMALL = ("--scenarios", "3", "--periods", "30", "--seed", "2", "--workers", "1")


def test_simulate_writes_the_csv_files_and_charts_and_prints_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "forecast"
    result = mutualaid("simulate", *SMALL, "--out", str(out))

    assert result.exit_code == 0, result.output
    for name in (
        "periods.csv",
        "bands.csv",
        "members.png",
        "members.svg",
        "share.png",
        "share.svg",
        "cases.png",
        "cases.svg",
    ):
        assert (out / name).stat().st_size > 0, name
    assert (out / "members.png").read_bytes().startswith(b"\x89PNG")
    assert b"<svg" in (out / "share.svg").read_bytes()
    with (out / "periods.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 30
    assert rows[0]["publicity_on"] == "2018-10-21"
    assert int(rows[-1]["members_p50"]) > 50_000_000
    assert (
        int(rows[-1]["share_fen_p5"])
        <= int(rows[-1]["share_fen_p50"])
        <= int(rows[-1]["share_fen_p95"])
    )
    assert "xhb-main: uniform sharing, 30 periods" in result.stdout
    assert "Fairness by age band" in result.stdout


def test_the_same_seed_writes_the_same_figures(tmp_path: Path) -> None:
    for name in ("a", "b"):
        result = mutualaid("simulate", *SMALL, "--no-charts", "--out", str(tmp_path / name))
        assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "periods.csv").read_bytes() == (
        tmp_path / "b" / "periods.csv"
    ).read_bytes()
    assert not (tmp_path / "a" / "share.png").exists()


def test_a_sharing_rule_can_be_chosen(tmp_path: Path) -> None:
    result = mutualaid(
        "simulate", *SMALL, "--no-charts", "--rule", "conditional_mean", "--out", str(tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert "conditional_mean sharing" in result.stdout


def test_a_plan_file_and_a_model_file_can_be_given(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        read_plan_file("xhb-main.toml").replace(
            "management_fee_bp = 800", "management_fee_bp = 1000"
        ),
        encoding="utf-8",
    )
    printed = mutualaid("simulate", "--print-model")
    assert printed.exit_code == 0, printed.output
    model = tmp_path / "model.toml"
    model.write_text(
        printed.stdout.replace("incidence_level = 1.15", "incidence_level = 2.0"), encoding="utf-8"
    )
    assert parse_model_toml(model.read_text(encoding="utf-8")).incidence_level == 2.0

    result = mutualaid(
        "simulate",
        *SMALL,
        "--no-charts",
        "--plan-file",
        str(plan),
        "--model",
        str(model),
        "--start-on",
        "2024-01-01",
        "--out",
        str(tmp_path / "out"),
    )
    assert result.exit_code == 0, result.output
    assert "(2024-01-07 to" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--periods", "0"), "--periods"),
        (("--scenarios", "0"), "--scenarios"),
        (("--rule", "lottery"), "--rule"),
        (("--start-on", "16/10/2018"), "--start-on"),
    ],
)
def test_bad_options_are_refused_with_exit_code_2(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = mutualaid("simulate", *args, "--out", str(tmp_path))
    assert result.exit_code == 2
    assert message in result.output
    assert_clean_failure(result)


def test_a_malformed_plan_file_is_refused_with_the_key(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        read_plan_file("xhb-main.toml").replace(
            "management_fee_bp = 800", "management_fee_bp = -1"
        ),
        encoding="utf-8",
    )
    result = mutualaid("simulate", *SMALL, "--plan-file", str(plan), "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "fees.management_fee_bp" in result.output
    assert_clean_failure(result)


def test_a_missing_plan_file_is_refused(tmp_path: Path) -> None:
    result = mutualaid(
        "simulate", *SMALL, "--plan-file", str(tmp_path / "nowhere.toml"), "--out", str(tmp_path)
    )
    assert result.exit_code == 2
    assert "nowhere.toml" in result.output
    assert_clean_failure(result)


def test_a_malformed_model_is_refused_with_the_key(tmp_path: Path) -> None:
    model = tmp_path / "model.toml"
    printed = mutualaid("simulate", "--print-model").stdout
    model.write_text(
        printed.replace("accident_per_100k = 0.2", "accident_per_100k = -1.0"), encoding="utf-8"
    )
    result = mutualaid("simulate", *SMALL, "--model", str(model), "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "invalid_model (accident_per_100k)" in result.output
    assert_clean_failure(result)


def test_an_output_directory_that_is_a_file_is_refused(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("", encoding="utf-8")
    result = mutualaid("simulate", *SMALL, "--no-charts", "--out", str(taken))
    assert result.exit_code == 2
    assert_clean_failure(result)


def test_calibrate_compares_the_default_model_with_the_published_figures(tmp_path: Path) -> None:
    result = mutualaid("calibrate", "--scenarios", "2", "--workers", "1", "--out", str(tmp_path))

    assert result.exit_code == 0, result.output
    assert "published figures" in result.stdout
    assert "membership" in result.stdout
    with (tmp_path / "calibration.csv").open(encoding="utf-8") as handle:
        rows = {row["key"]: row for row in csv.DictReader(handle)}
    assert float(rows["total_2019"]["published"]) == 29
    assert rows["total_2019"]["source"] == "2019 total"
    assert abs(float(rows["total_2020"]["relative_error"])) < 0.1


def test_the_root_help_lists_simulate_and_calibrate() -> None:
    result = mutualaid("--help")
    assert result.exit_code == 0, result.output
    for name in ("simulate", "calibrate"):
        assert f" {name} " in result.stdout, name


def test_simulate_a_plan_in_the_database_starts_from_its_members_today(
    ctx: ServiceContext, clock: FixedClock, tmp_path: Path
) -> None:
    publish_demo_plans(ctx)
    members(ctx, clock, 3, datetime(2025, 6, 1, 4, tzinfo=UTC))
    result = mutualaid(
        "simulate", "--plan", "xhb-main", *SMALL, "--no-charts", "--out", str(tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert "xhb-main on " in result.stdout and ": 3 members" in result.stdout
    with (tmp_path / "periods.csv").open(encoding="utf-8") as handle:
        first = next(csv.DictReader(handle))
    assert 0 < int(first["members_p50"]) <= 3


def test_a_plan_in_the_database_with_a_plan_file_is_refused(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(read_plan_file("xhb-main.toml"), encoding="utf-8")
    result = mutualaid("simulate", "--plan", "xhb-main", "--plan-file", str(plan), *SMALL)
    assert result.exit_code == 2
    assert "invalid_start" in result.output
    assert_clean_failure(result)
