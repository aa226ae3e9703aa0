"""A command gives back the database connections it opened."""

from __future__ import annotations

import gc
import os
import warnings
from pathlib import Path

from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from mutualaid.cli.app import app
from mutualaid.services.context import ServiceContext


def _open_files_of(database: str) -> int:
    """How many file descriptors of this process point at the SQLite file (or its -wal/-shm)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(database):
            count += 1
    return count


def test_a_command_leaves_no_database_connection_open(
    ctx: ServiceContext, database_url: str
) -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        database = str(Path(url.database or "").resolve())
        before = _open_files_of(database)
        CliRunner().invoke(app, ["plans", "list"])
        assert _open_files_of(database) == before
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        CliRunner().invoke(app, ["plans", "list"])
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
