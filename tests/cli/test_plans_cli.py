"""`mutualaid plans …`: check a plan file offline, publish it, read it back."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import pytest
from tests.cli.cli import assert_clean_failure, mutualaid, said

from mutualaid.plan_files import read_plan_file
from mutualaid.services.context import ServiceContext
from mutualaid.services.plans.plans import plan_rules

SHIPPED = Path(str(files("mutualaid.plan_files").joinpath("xhb-main.toml")))
MAIN_TOML = read_plan_file("xhb-main.toml")


def _write(tmp_path: Path, text: str, name: str = "plan.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_checking_the_shipped_plan_file_succeeds() -> None:
    result = mutualaid("plans", "check", str(SHIPPED))

    assert result.exit_code == 0, result.output
    assert "plan xhb-main is valid" in said(result.stdout)


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("days = 90 ", 'days = "ninety" ', "waiting_period.days"),
        ("max_age_years = 59", "max_age_yaers = 59", "entry.max_age_yaers"),
        ("publicity_days = [7, 21]", "publicity_days = [7, 30]", "periods.publicity_days[1]"),
    ],
)
def test_checking_a_malformed_copy_exits_2_naming_the_key(
    tmp_path: Path, old: str, new: str, key: str
) -> None:
    path = _write(tmp_path, MAIN_TOML.replace(old, new, 1))

    result = mutualaid("plans", "check", str(path))

    assert result.exit_code == 2
    assert "invalid_plan" in said(result.stderr)
    assert key in said(result.stderr)
    assert result.stdout == ""
    assert_clean_failure(result)


def test_checking_a_file_that_is_not_toml_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, 'code = "xhb-main\n')

    result = mutualaid("plans", "check", str(path))

    assert result.exit_code == 2
    assert "not valid TOML" in said(result.stderr)
    assert_clean_failure(result)


def test_checking_a_missing_file_exits_2_without_a_traceback(tmp_path: Path) -> None:
    result = mutualaid("plans", "check", str(tmp_path / "nowhere.toml"))

    assert result.exit_code == 2
    assert "nowhere.toml" in said(result.stderr)
    assert_clean_failure(result)


def test_a_published_plan_is_listed_and_shown(ctx: ServiceContext) -> None:
    published = mutualaid("plans", "publish", str(SHIPPED))
    assert published.exit_code == 0, published.output
    assert "plan xhb-main published as version 1" in said(published.stdout)

    listed = mutualaid("plans", "list")
    assert listed.exit_code == 0, listed.output
    assert "xhb-main" in said(listed.stdout)
    assert "xhb-elderly-cancer" not in said(listed.stdout)

    shown = mutualaid("plans", "show", "xhb-main")
    assert shown.exit_code == 0, shown.output
    assert "(v1, open)" in said(shown.stdout)
    assert "waiting period: 90 days; management fee: 8%" in said(shown.stdout)
    assert "300,000.00" in said(shown.stdout)
    assert "5 health questions" in said(shown.stdout)


def test_show_json_prints_the_rules_as_json(ctx: ServiceContext) -> None:
    mutualaid("plans", "publish", str(SHIPPED))

    result = mutualaid("plans", "show", "xhb-main", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == plan_rules(ctx, "xhb-main")[1].to_json()


def test_show_source_prints_the_plan_file_as_published(ctx: ServiceContext) -> None:
    mutualaid("plans", "publish", str(SHIPPED))

    result = mutualaid("plans", "show", "xhb-main", "--source")

    assert result.exit_code == 0, result.output
    assert result.stdout == MAIN_TOML


def test_publishing_the_same_file_twice_keeps_one_version_and_a_change_makes_a_new_one(
    ctx: ServiceContext, tmp_path: Path
) -> None:
    mutualaid("plans", "publish", str(SHIPPED))

    again = mutualaid("plans", "publish", str(SHIPPED))
    assert again.exit_code == 0, again.output
    assert "unchanged, still version 1" in said(again.stdout)

    changed = mutualaid(
        "plans", "publish", str(_write(tmp_path, MAIN_TOML.replace("days = 90 ", "days = 60 ", 1)))
    )
    assert "published as version 2" in said(changed.stdout)
    assert plan_rules(ctx, "xhb-main")[1].waiting_period.days == 60


def test_publishing_a_malformed_file_changes_nothing(ctx: ServiceContext, tmp_path: Path) -> None:
    mutualaid("plans", "publish", str(SHIPPED))
    path = _write(tmp_path, MAIN_TOML.replace("days = 90 ", "days = -1 ", 1))

    result = mutualaid("plans", "publish", str(path))

    assert result.exit_code == 2
    assert "waiting_period.days" in said(result.stderr)
    assert_clean_failure(result)
    view, rules = plan_rules(ctx, "xhb-main")
    assert (view.version, rules.waiting_period.days) == (1, 90)


def test_showing_an_unknown_plan_exits_3(ctx: ServiceContext) -> None:
    result = mutualaid("plans", "show", "no-such-plan")

    assert result.exit_code == 3
    assert "plan_not_found" in said(result.stderr)
    assert_clean_failure(result)
