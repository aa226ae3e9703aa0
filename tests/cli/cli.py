"""Running the `mutualaid` command in-process, as a person at a terminal would."""

from __future__ import annotations

import gc
import warnings

from typer.testing import CliRunner, Result

from mutualaid.cli.app import app


def mutualaid(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args), prog_name="mutualaid")
    collect_unclosed_connections()
    return result


def collect_unclosed_connections() -> None:
    """Commands build an engine per run and leave its connections open (a bug, pinned by
    test_a_command_leaves_no_database_connection_open); collect them here, so that psycopg's
    warning about them does not fail whichever later test happens to run the garbage collector."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def said(text: str) -> str:
    """The output with the console's line wrapping undone, to look for phrases in."""
    return " ".join(text.split())


def assert_clean_failure(result: Result) -> None:
    """A refusal is a message for people: no traceback, and not an internal error."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert "internal error" not in result.output
