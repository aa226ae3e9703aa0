from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from tests.factories import account, enroll, publish_demo_plans, resident_id

from mutualaid.db.models import Account, Membership, Person
from mutualaid.domain.errors import DomainError
from mutualaid.domain.memberships import MembershipState
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.context import ServiceContext
from mutualaid.services.demo_data import random_member_rows
from mutualaid.services.enrollment.member_imports import ImportReport, import_members

TODAY = date(2026, 3, 1)
HEADER = ["payer_phone", "full_name", "id_number", "relation", "joined_on"]


def to_csv(rows: list[dict[str, str]], header: list[str] = HEADER) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, header)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def run_import(
    ctx: ServiceContext, text: str, chunk_rows: int = 1000
) -> tuple[ImportReport, list[dict[str, str]]]:
    errors = io.StringIO()
    report = import_members(
        ctx, SYSTEM_ACTOR, "xhb-main", io.StringIO(text), errors, chunk_rows=chunk_rows
    )
    return report, list(csv.DictReader(io.StringIO(errors.getvalue())))


@pytest.fixture(autouse=True)
def plans(ctx: ServiceContext) -> None:
    publish_demo_plans(ctx)


def test_good_rows_are_imported_and_bad_rows_reported_by_line(ctx: ServiceContext) -> None:
    good = random_member_rows(250, TODAY)
    bad_id = dict(good[0], id_number=good[0]["id_number"][:-1] + "0", payer_phone="13000000001")
    if bad_id["id_number"] == good[0]["id_number"]:
        bad_id["id_number"] = good[0]["id_number"][:-1] + "1"
    too_old = {
        "payer_phone": "13000000002",
        "full_name": "王老",
        "relation": "self",
        "id_number": resident_id(date(1960, 1, 1)),
        "joined_on": "2026-01-01",
    }
    bad_relation = dict(too_old, id_number=resident_id(date(1990, 1, 1)), relation="cousin")
    future = dict(too_old, id_number=resident_id(date(1990, 1, 1)), joined_on="2026-03-02")
    duplicate = dict(good[5])
    rows = [
        *good[:100],
        bad_id,
        too_old,
        *good[100:200],
        bad_relation,
        future,
        duplicate,
        *good[200:],
    ]
    # One chunk: a repeat inside a chunk is a duplicate_in_file; across chunks (memory stays flat,
    # so earlier chunks are not remembered) the earlier row already made them a member.
    report, errors = run_import(ctx, to_csv(rows), chunk_rows=1000)
    assert (report.rows_read, report.imported, report.rejected) == (255, 250, 5)
    # Header is line 1, so data row i (0-based) is on line i + 2.
    assert [(e["line"], e["code"]) for e in errors] == [
        ("102", "invalid_id_number"),
        ("103", "too_old"),
        ("204", "invalid_relation"),
        ("205", "invalid_date"),
        ("206", "duplicate_in_file"),
    ]
    assert all(e["message"] for e in errors)
    with ctx.reading() as session:
        assert session.scalar(select(func.count()).select_from(Membership)) == 250
        phones = {r["payer_phone"] for r in good}
        assert session.scalar(select(func.count()).select_from(Account)) == len(phones)


def test_a_repeat_in_a_later_chunk_is_refused_as_already_member(ctx: ServiceContext) -> None:
    rows = random_member_rows(30, TODAY)
    report, errors = run_import(ctx, to_csv([*rows, rows[0]]), chunk_rows=10)
    assert (report.imported, report.rejected) == (30, 1)
    assert [(e["line"], e["code"]) for e in errors] == [("32", "already_member")]


def test_importing_the_same_file_twice_imports_nothing_new(ctx: ServiceContext) -> None:
    text = to_csv(random_member_rows(120, TODAY))
    first, _ = run_import(ctx, text, chunk_rows=50)
    second, errors = run_import(ctx, text, chunk_rows=50)
    assert first.imported == 120
    assert (second.imported, second.rejected) == (0, 120)
    assert {e["code"] for e in errors} == {"already_member"}
    with ctx.reading() as session:
        assert session.scalar(select(func.count()).select_from(Membership)) == 120
        assert session.scalar(select(func.count()).select_from(Person)) == 120


def test_imported_members_keep_their_join_date_and_waiting_period(ctx: ServiceContext) -> None:
    joined_long_ago = {
        "payer_phone": "13000000003",
        "full_name": "陈静",
        "relation": "self",
        "id_number": resident_id(date(1985, 2, 2)),
        "joined_on": "2025-06-01",
    }
    joined_lately = dict(
        joined_long_ago,
        id_number=resident_id(date(1986, 2, 2)),
        relation="spouse",
        joined_on=(TODAY - timedelta(days=90)).isoformat(),
    )
    report, _ = run_import(ctx, to_csv([joined_long_ago, joined_lately]))
    assert report.imported == 2
    with ctx.reading() as session:
        rows = session.execute(
            select(Membership.state, Membership.joined_on, Membership.covered_from_on).order_by(
                Membership.id
            )
        ).all()
    assert rows[0] == (MembershipState.COVERED, date(2025, 6, 1), date(2025, 8, 31))
    assert rows[1] == (
        MembershipState.WAITING,
        TODAY - timedelta(days=90),
        TODAY + timedelta(days=1),
    )


def test_a_person_registered_by_another_account_is_refused(ctx: ServiceContext) -> None:
    number = resident_id(date(1990, 5, 1))
    enroll(ctx, account(ctx), date(1990, 5, 1), id_number=number)
    row = {
        "payer_phone": "13000000004",
        "full_name": "周杰",
        "relation": "self",
        "id_number": number,
        "joined_on": "",
    }
    report, errors = run_import(ctx, to_csv([row]))
    assert report.imported == 0
    assert [e["code"] for e in errors] == ["identity_registered_elsewhere"]


def test_a_file_without_the_required_columns_is_refused_before_anything_is_written(
    ctx: ServiceContext,
) -> None:
    with pytest.raises(DomainError) as refused:
        run_import(ctx, "phone,name\n1,2\n")
    assert refused.value.code == "invalid_csv"
    assert refused.value.field == "payer_phone"


class _ReportDiskFull(io.StringIO):
    """An error report on a disk that fills up after the header and the first chunk's errors."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        if self.writes > 2:
            raise OSError(28, "No space left on device")
        return super().write(text)


def test_an_import_that_stops_halfway_says_what_was_committed(ctx: ServiceContext) -> None:
    rows = random_member_rows(300, TODAY)
    cousin = {50: dict(rows[50], relation="cousin"), 150: dict(rows[150], relation="cousin")}
    text = to_csv([cousin.get(i, row) for i, row in enumerate(rows)])

    with pytest.raises(DomainError) as stopped:
        import_members(
            ctx, SYSTEM_ACTOR, "xhb-main", io.StringIO(text), _ReportDiskFull(), chunk_rows=100
        )

    assert stopped.value.code == "import_interrupted"
    with ctx.reading() as session:
        committed = session.scalar(select(func.count()).select_from(Membership))
    # The second chunk was committed before its error report failed: it counts.
    assert committed == stopped.value.details["imported"] == 198
    assert f"{committed:,} imported and committed" in stopped.value.message
