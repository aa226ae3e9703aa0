"""`mutualaid members …`: bulk import with an error report, paging through members, the daily job."""

from __future__ import annotations

import csv
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from tests.cli.cli import assert_clean_failure, mutualaid, said
from tests.factories import account, enroll, publish_demo_plans, resident_id

from mutualaid.clock import FixedClock
from mutualaid.domain.memberships import MembershipState
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.context import ServiceContext
from mutualaid.services.demo_data import random_member_rows
from mutualaid.services.enrollment.memberships import list_plan_members

HEADER = ["payer_phone", "full_name", "id_number", "relation", "joined_on"]


def _today() -> date:
    """The commands run on the real clock; dates below stay far from any age boundary."""
    return datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, HEADER)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _report(path: Path) -> list[tuple[int, str, str]]:
    with path.open(newline="", encoding="utf-8") as source:
        return [(int(r["line"]), r["code"], r["field"]) for r in csv.DictReader(source)]


def _members(ctx: ServiceContext) -> list[tuple[str, str]]:
    page = list_plan_members(ctx, SYSTEM_ACTOR, "xhb-main", limit=500)
    return [(row.name_masked, row.relation) for row in page.items]


def _listed_ids(table: str) -> list[int]:
    """The membership ids in the first column of the printed table."""
    return [int(match) for match in re.findall(r"^│\s*(\d+)\s*│", table, flags=re.MULTILINE)]


@pytest.fixture
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


@pytest.fixture
def members_csv(tmp_path: Path) -> Path:
    """Five good rows (one family of three, two single members) and four bad ones."""
    today = _today()
    family = {"payer_phone": "13812340001", "joined_on": (today - timedelta(days=10)).isoformat()}
    holder = family | {
        "full_name": "王伟",
        "relation": "self",
        "id_number": resident_id(date(1985, 6, 15)),
    }
    good_id = resident_id(date(1988, 1, 1))
    rows = [
        holder,  # line 2
        family
        | {
            "full_name": "李芳",
            "relation": "spouse",
            "id_number": resident_id(date(1987, 2, 2)),
        },  # line 3
        family
        | {
            "full_name": "王小明",
            "relation": "child",
            "id_number": resident_id(date(2019, 3, 3)),
        },  # line 4
        holder
        | {
            "payer_phone": "13812340002",
            "full_name": "赵强",
            "id_number": good_id[:17] + ("0" if good_id[17] != "0" else "1"),
        },  # line 5
        holder
        | {
            "payer_phone": "13812340003",
            "full_name": "钱老",
            "id_number": resident_id(date(1940, 1, 1)),
        },  # line 6
        holder
        | {
            "payer_phone": "13812340004",
            "full_name": "孙丽",
            "relation": "cousin",
            "id_number": resident_id(date(1990, 1, 1)),
        },  # line 7
        holder | {"payer_phone": "13812340005"},  # line 8
        *random_member_rows(2, today, seed=7),  # lines 9-10
    ]
    return _write_csv(tmp_path / "members.csv", rows)


BAD_LINES = [
    (5, "invalid_id_number", "id_number"),
    (6, "too_old", "id_number"),
    (7, "invalid_relation", "relation"),
    (8, "duplicate_in_file", "id_number"),
]


@pytest.mark.usefixtures("plans")
def test_an_import_keeps_the_good_rows_and_reports_each_bad_line_with_its_code(
    ctx: ServiceContext, members_csv: Path
) -> None:
    result = mutualaid("members", "import", "xhb-main", str(members_csv))

    assert result.exit_code == 1, result.output
    assert "9 rows read, 5 imported, 4 refused" in said(result.stdout)
    errors = members_csv.with_suffix(".errors.csv")
    assert f"(see{errors})" in "".join(result.stdout.split())  # a long path may be folded
    assert _report(errors) == BAD_LINES
    imported = _members(ctx)
    assert len(imported) == 5
    assert imported[:3] == [("王*", "self"), ("李*", "spouse"), ("王*明", "child")]
    assert_clean_failure(result)


@pytest.mark.usefixtures("plans")
def test_importing_the_same_file_again_imports_nobody_twice(
    ctx: ServiceContext, members_csv: Path, tmp_path: Path
) -> None:
    mutualaid("members", "import", "xhb-main", str(members_csv))
    second_report = tmp_path / "second.errors.csv"

    result = mutualaid(
        "members", "import", "xhb-main", str(members_csv), "--errors", str(second_report)
    )

    assert result.exit_code == 1, result.output
    assert "9 rows read, 0 imported, 9 refused" in said(result.stdout)
    already = [(line, "already_member", "id_number") for line in (2, 3, 4, 9, 10)]
    assert _report(second_report) == sorted(BAD_LINES + already)
    assert len(_members(ctx)) == 5


@pytest.mark.usefixtures("plans")
def test_an_import_with_only_good_rows_exits_0(ctx: ServiceContext, tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "good.csv", random_member_rows(4, _today(), seed=11))

    result = mutualaid("members", "import", "xhb-main", str(path))

    assert result.exit_code == 0, result.output
    assert "4 rows read, 4 imported, 0 refused" in said(result.stdout)
    assert _report(path.with_suffix(".errors.csv")) == []


@pytest.mark.usefixtures("plans")
def test_an_import_without_a_required_column_exits_2_naming_it(
    ctx: ServiceContext, tmp_path: Path
) -> None:
    path = tmp_path / "members.csv"
    path.write_text("payer_phone,full_name\n13812340001,王伟\n", encoding="utf-8")

    result = mutualaid("members", "import", "xhb-main", str(path))

    assert result.exit_code == 2
    assert "id_number" in said(result.stderr)
    assert_clean_failure(result)
    assert _members(ctx) == []


def test_importing_into_an_unknown_plan_exits_3(ctx: ServiceContext, members_csv: Path) -> None:
    result = mutualaid("members", "import", "no-such-plan", str(members_csv))

    assert result.exit_code == 3
    assert "plan_not_found" in said(result.stderr)
    assert_clean_failure(result)


@pytest.mark.usefixtures("plans")
def test_members_are_listed_masked_one_page_at_a_time(ctx: ServiceContext, tmp_path: Path) -> None:
    rows = random_member_rows(3, _today(), seed=3)
    mutualaid("members", "import", "xhb-main", str(_write_csv(tmp_path / "m.csv", rows)))
    ids = [row.membership_id for row in list_plan_members(ctx, SYSTEM_ACTOR, "xhb-main").items]

    first = mutualaid("members", "list", "xhb-main", "--limit", "2")

    assert first.exit_code == 0, first.output
    assert f"3 members; next page: --after-id {ids[1]}" in said(first.stdout)
    assert rows[0]["full_name"] not in said(first.stdout)
    assert _listed_ids(first.stdout) == ids[:2]

    rest = mutualaid("members", "list", "xhb-main", "--limit", "2", "--after-id", str(ids[1]))

    assert rest.exit_code == 0, rest.output
    assert "next page" not in said(rest.stdout)
    assert _listed_ids(rest.stdout) == ids[2:]


@pytest.mark.usefixtures("plans")
def test_the_daily_job_covers_members_whose_waiting_period_is_over(
    ctx: ServiceContext, clock: FixedClock
) -> None:
    clock.set(datetime.now(UTC) - timedelta(days=100))
    waited = enroll(ctx, account(ctx), date(1990, 5, 1))
    clock.set(datetime.now(UTC) - timedelta(days=10))
    enroll(ctx, account(ctx), date(1991, 5, 1))

    result = mutualaid("members", "advance", "xhb-main")

    assert result.exit_code == 0, result.output
    assert f"{_today().isoformat()}: 1 now covered, 0 aged out" in said(result.stdout)
    covered = list_plan_members(ctx, SYSTEM_ACTOR, "xhb-main", state=MembershipState.COVERED)
    assert [row.membership_id for row in covered.items] == [waited.id]
    again = mutualaid("members", "advance", "xhb-main")
    assert "0 now covered" in said(again.stdout)


@pytest.mark.usefixtures("plans")
def test_an_import_hands_the_invitation_codes_to_the_operator_only(
    ctx: ServiceContext, members_csv: Path, tmp_path: Path
) -> None:
    from mutualaid.services.accounts.accounts import register_account

    codes = tmp_path / "codes.csv"
    result = mutualaid(
        "members", "import", "xhb-main", str(members_csv), "--invitations", str(codes)
    )

    assert codes.stat().st_mode & 0o777 == 0o600
    with codes.open(newline="", encoding="utf-8") as source:
        issued = {row["phone"]: row["invitation"] for row in csv.DictReader(source)}
    assert "13812340001" in issued  # one per new account, the family's payer among them
    assert not any(code in result.output for code in issued.values())
    view = register_account(
        ctx, "13812340001", "secret-passphrase", invitation=issued["13812340001"]
    )
    assert view.phone == "13812340001"
