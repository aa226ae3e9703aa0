"""CLI fixtures: the `mutualaid` command configured by MUTUALAID_* variables to use the test database.

Tests that touch the database take the `ctx` fixture: it migrates the database, empties it after the
test, and lets a test prepare or check state through the services on the same database.
"""

from __future__ import annotations

from pathlib import Path

import pytest

#: The ctx fixture's key too, so identity numbers hash alike whether written by a test or a command.
SECRET = "test-secret-key-q8Zr2vLx7KpW4mNb9TfY3hJd"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> None:
    """Every command reads its settings from here; none of the developer's own settings leak in."""
    for name in (
        "MUTUALAID_DEMO",
        "MUTUALAID_DEBUG",
        "MUTUALAID_CREDIT_CHECK",
        "MUTUALAID_NEW_PASSWORD",
    ):
        # setenv first so that monkeypatch restores the variable's absence if a command sets it.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("MUTUALAID_DATABASE_URL", database_url)
    monkeypatch.setenv("MUTUALAID_SECRET_KEY", SECRET)
    monkeypatch.setenv("MUTUALAID_DATA_DIR", str(tmp_path / "var"))
