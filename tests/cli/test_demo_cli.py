"""`mutualaid demo`: one command makes a working demo on SQLite, once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.cli.cli import assert_clean_failure, mutualaid, said
from tests.factories import staff

from mutualaid.db.models import Account
from mutualaid.domain.accounts import Role
from mutualaid.domain.identities import parse_resident_id
from mutualaid.services.context import ServiceContext
from mutualaid.services.demo.seeding import (
    DEMO_APPROVER_PHONE,
    DEMO_DECLINED_PHONE,
    DEMO_MEMBER_PHONE,
    DEMO_PASSWORD,
    DEMO_STAFF,
)


def _joined(text: str) -> str:
    """The output without any whitespace (a long path may be folded over lines)."""
    return "".join(text.split())


@pytest.fixture
def demo_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    # The demo picks its own database when it is unset; demo mode must be asked for.
    monkeypatch.delenv("MUTUALAID_DATABASE_URL")
    monkeypatch.delenv("MUTUALAID_SECRET_KEY")
    return tmp_path / "demo.db"


def test_the_demo_is_created_once_and_running_it_again_says_it_is_there(
    demo_database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MUTUALAID_DEMO", "1")  # as `make demo` sets it
    first = mutualaid("demo", "--no-serve", "--crowd", "20", "--database", str(demo_database))

    assert first.exit_code == 0, first.output
    output = said(first.stdout)
    assert f"(created:sqlite:///{demo_database})" in _joined(first.stdout)
    assert f"member phone {DEMO_MEMBER_PHONE} password {DEMO_PASSWORD}" in output
    assert f"declined phone {DEMO_DECLINED_PHONE} password {DEMO_PASSWORD}" in output
    assert re.search(rf"juror phone 138001380\d\d password {DEMO_PASSWORD}", output)
    for role, phone in DEMO_STAFF.items():
        assert f"{role} phone {phone} password {DEMO_PASSWORD}" in output
    assert f"reviewer phone {DEMO_APPROVER_PHONE} password {DEMO_PASSWORD}" in output
    samples = re.search(r"try a join with these ID numbers: ([\dX ]+)", output)
    assert samples is not None
    for number in samples.group(1).split():
        parse_resident_id(number)  # refuses a number whose check character is wrong
    assert demo_database.exists()

    second = mutualaid("demo", "--no-serve", "--crowd", "20", "--database", str(demo_database))

    assert second.exit_code == 0, second.output
    assert f"(alreadythere:sqlite:///{demo_database})" in _joined(second.stdout)

    monkeypatch.setenv("MUTUALAID_DATABASE_URL", f"sqlite:///{demo_database}")
    monkeypatch.setenv("MUTUALAID_DEMO", "1")
    listed = mutualaid("members", "list", "xhb-main", "--limit", "1")
    # A crowd of 20 and the members of the demo's history.
    assert "36 members" in said(listed.stdout)
    plans = mutualaid("plans", "list")
    assert "xhb-main" in said(plans.stdout) and "xhb-elderly-cancer" in said(plans.stdout)


def test_the_demo_refuses_without_demo_mode(
    demo_database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MUTUALAID_SECRET_KEY", "a-real-deployment-secret-Xk29fQ7wLm4Rz8Tp")
    result = mutualaid("demo", "--no-serve", "--crowd", "0", "--database", str(demo_database))

    assert result.exit_code == 2
    assert "demo_mode_off" in said(result.stderr)
    assert_clean_failure(result)
    assert not demo_database.exists()


def test_the_demo_plants_no_operator_in_a_database_with_real_accounts(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A production database: a real secret (the fixture's), a real account in it.
    staff(ctx, Role.OPERATOR)
    monkeypatch.setenv("MUTUALAID_DEMO", "1")

    result = mutualaid("demo", "--no-serve", "--crowd", "0")

    assert result.exit_code == 2
    assert "database_not_demo" in said(result.stderr)
    assert_clean_failure(result)
    with ctx.reading() as session:
        phones = set(session.scalars(select(Account.phone)))
    assert DEMO_STAFF[Role.OPERATOR] not in phones
