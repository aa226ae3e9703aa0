"""`mutualaid demo`: one command makes a working demo on SQLite, once."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.cli.cli import mutualaid, said

from mutualaid.services.demo_data import DEMO_MEMBER_PHONE, DEMO_PASSWORD, DEMO_STAFF


def _joined(text: str) -> str:
    """The output without any whitespace (a long path may be folded over lines)."""
    return "".join(text.split())


@pytest.fixture
def demo_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    # The demo picks its own database and demo mode when these are unset (and sets them).
    monkeypatch.delenv("MUTUALAID_DATABASE_URL")
    monkeypatch.delenv("MUTUALAID_SECRET_KEY")
    return tmp_path / "demo.db"


def test_the_demo_is_created_once_and_running_it_again_says_it_is_there(
    demo_database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = mutualaid("demo", "--no-serve", "--crowd", "20", "--database", str(demo_database))

    assert first.exit_code == 0, first.output
    output = said(first.stdout)
    assert f"(created:sqlite:///{demo_database})" in _joined(first.stdout)
    assert f"member phone {DEMO_MEMBER_PHONE} password {DEMO_PASSWORD}" in output
    for role, phone in DEMO_STAFF.items():
        assert f"{role} phone {phone} password {DEMO_PASSWORD}" in output
    assert demo_database.exists()

    second = mutualaid("demo", "--no-serve", "--crowd", "20", "--database", str(demo_database))

    assert second.exit_code == 0, second.output
    assert f"(alreadythere:sqlite:///{demo_database})" in _joined(second.stdout)

    monkeypatch.setenv("MUTUALAID_DATABASE_URL", f"sqlite:///{demo_database}")
    monkeypatch.setenv("MUTUALAID_DEMO", "1")
    listed = mutualaid("members", "list", "xhb-main", "--limit", "1")
    assert "22 members" in said(listed.stdout)  # the demo member, their child and a crowd of 20
    plans = mutualaid("plans", "list")
    assert "xhb-main" in said(plans.stdout) and "xhb-elderly-cancer" in said(plans.stdout)
