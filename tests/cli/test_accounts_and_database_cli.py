"""`mutualaid accounts create` and `mutualaid db …`: staff accounts and the schema revision."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from tests.cli.cli import assert_clean_failure, mutualaid, said

from mutualaid.db.schema import alembic_config
from mutualaid.domain.accounts import Role
from mutualaid.services.accounts.accounts import log_in
from mutualaid.services.context import ServiceContext

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()
NEW_PASSWORD = "a long staff password"


def test_an_operator_account_is_created_with_the_password_from_the_environment(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MUTUALAID_NEW_PASSWORD", NEW_PASSWORD)

    result = mutualaid("accounts", "create", "--phone", "10000000077", "--name", "值班运营")

    assert result.exit_code == 0, result.output
    assert "(10000000077) created with role operator" in said(result.stdout)
    assert NEW_PASSWORD not in result.output
    session = log_in(ctx, "10000000077", NEW_PASSWORD)
    assert session.account.role is Role.OPERATOR
    assert session.account.display_name == "值班运营"


def test_an_account_is_created_with_the_role_asked_for(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MUTUALAID_NEW_PASSWORD", NEW_PASSWORD)

    result = mutualaid("accounts", "create", "--phone", "10000000078", "--role", "auditor")

    assert result.exit_code == 0, result.output
    assert log_in(ctx, "10000000078", NEW_PASSWORD).account.role is Role.AUDITOR


def test_a_phone_number_that_has_an_account_is_refused(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MUTUALAID_NEW_PASSWORD", NEW_PASSWORD)
    mutualaid("accounts", "create", "--phone", "10000000079")

    again = mutualaid("accounts", "create", "--phone", "10000000079", "--role", "member")

    assert again.exit_code == 2
    assert "phone_taken" in said(again.stderr)
    assert_clean_failure(again)
    assert log_in(ctx, "10000000079", NEW_PASSWORD).account.role is Role.OPERATOR


def test_a_weak_password_is_refused(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUTUALAID_NEW_PASSWORD", "short")

    result = mutualaid("accounts", "create", "--phone", "10000000080")

    assert result.exit_code == 2
    assert "weak_password" in said(result.stderr)
    assert_clean_failure(result)


def test_db_current_shows_the_newest_revision_of_a_migrated_database(ctx: ServiceContext) -> None:
    result = mutualaid("db", "current")

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == HEAD


def test_an_empty_database_is_upgraded_to_the_newest_revision(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MUTUALAID_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    assert "empty (run `mutualaid db upgrade`)" in said(mutualaid("db", "current").stdout)

    result = mutualaid("db", "upgrade")

    assert result.exit_code == 0, result.output
    assert f"database at revision {HEAD}" in said(result.stdout)
    assert mutualaid("db", "current").stdout.strip() == HEAD


def test_serve_refuses_an_empty_database_instead_of_starting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MUTUALAID_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")

    result = mutualaid("serve", "--port", "1")

    assert result.exit_code == 2
    assert "mutualaid db upgrade" in said(result.stderr)
    assert_clean_failure(result)


def test_reset_2fa_removes_a_staff_factor_and_is_audited(ctx: ServiceContext) -> None:
    from sqlalchemy import select
    from tests.factories import account

    from mutualaid.db.models import AuditEvent
    from mutualaid.services.accounts.second_factors import has_factor

    staff = account(ctx, Role.REVIEWER, phone="10000000091")
    assert has_factor(ctx, staff.account_id)

    result = mutualaid("accounts", "reset-2fa", "--phone", "10000000091")

    assert result.exit_code == 0, result.output
    assert not has_factor(ctx, staff.account_id)
    with ctx.reading() as session:
        assert (
            session.scalar(
                select(AuditEvent.subject_id).where(AuditEvent.action == "second_factor_reset")
            )
            == staff.account_id
        )


def test_reset_2fa_of_a_member_is_refused(ctx: ServiceContext) -> None:
    from tests.factories import account

    account(ctx, Role.MEMBER, phone="10000000092")

    result = mutualaid("accounts", "reset-2fa", "--phone", "10000000092")

    assert result.exit_code != 0
    assert "not_staff" in said(result.stderr)
    assert_clean_failure(result)
