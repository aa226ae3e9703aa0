"""Running the `mutualaid` command in-process, as a person at a terminal would."""

from __future__ import annotations

from typer.testing import CliRunner, Result

from mutualaid.cli.app import app


def mutualaid(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), prog_name="mutualaid")


def assert_clean_failure(result: Result) -> None:
    """A refusal is a message for people: no traceback, and not an internal error."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert "internal error" not in result.output
