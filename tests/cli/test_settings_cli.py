"""Settings: commands refuse to run with the demo secret outside demo mode, or a short secret."""

from __future__ import annotations

import pytest
from tests.cli.cli import assert_clean_failure, mutualaid, said

from mutualaid.services.context import ServiceContext


def test_the_default_secret_is_refused_outside_demo_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MUTUALAID_SECRET_KEY")

    result = mutualaid("plans", "list")

    assert result.exit_code == 2
    assert "MUTUALAID_SECRET_KEY" in said(result.stderr)
    assert "MUTUALAID_DEMO" in said(result.stderr)
    assert_clean_failure(result)


def test_a_short_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUTUALAID_SECRET_KEY", "too-short")

    result = mutualaid("plans", "list")

    assert result.exit_code == 2
    assert "MUTUALAID_SECRET_KEY must be at least 32 characters" in said(result.stderr)
    assert_clean_failure(result)


def test_the_default_secret_is_accepted_in_demo_mode(
    monkeypatch: pytest.MonkeyPatch, ctx: ServiceContext
) -> None:
    monkeypatch.delenv("MUTUALAID_SECRET_KEY")
    monkeypatch.setenv("MUTUALAID_DEMO", "1")

    result = mutualaid("plans", "list")

    assert result.exit_code == 0, result.output


def test_a_malformed_setting_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MUTUALAID_TOKEN_TTL_HOURS", "forever")

    result = mutualaid("plans", "list")

    assert result.exit_code == 2
    assert "MUTUALAID_TOKEN_TTL_HOURS" in said(result.stderr)
    assert_clean_failure(result)


@pytest.mark.parametrize(
    "secret",
    [
        "a" * 64,
        "0123456789" * 5,
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF",
        "ab" * 24,
    ],
)
def test_a_long_but_guessable_secret_is_refused(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv("MUTUALAID_SECRET_KEY", secret)

    result = mutualaid("plans", "list")

    assert result.exit_code == 2
    assert "weak_secret_key" in said(result.stderr)
    assert "MUTUALAID_SECRET_KEY" in said(result.stderr)
    assert_clean_failure(result)
