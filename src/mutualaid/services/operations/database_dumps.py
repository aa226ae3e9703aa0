"""The database part of a backup: a consistent copy out, and back into an empty database.

SQLite: the online backup API (`sqlite3.Connection.backup`) copies every page in one step, inside
one read transaction; in WAL mode writers carry on meanwhile and the copy is the database as it
was when the step began. PostgreSQL: `pg_dump` in its custom format (``-Fc``), which reads one
snapshot; `pg_restore` puts it into an empty database in a single transaction, so a restore that
fails leaves the target as empty as it found it.

The PostgreSQL tools get the connection without its password (which goes in ``PGPASSWORD``), so
the password shows neither in the process list nor in an error message.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import URL, Engine, text

from mutualaid.domain.errors import DomainError

#: The database file's name in a backup folder, by dialect.
DUMP_NAMES = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}

_POLL_S = 0.2
_SQLITE_TIMEOUT_S = 30.0


def dialect_of(engine: Engine) -> str:
    name = engine.dialect.name
    if name not in DUMP_NAMES:
        raise DomainError(
            "backup_unsupported_database",
            f"backups cover SQLite and PostgreSQL, not {name}",
            "MUTUALAID_DATABASE_URL",
        )
    return name


def dump_database(engine: Engine, target: Path, on_bytes: Callable[[int], None]) -> str:
    """Write a consistent copy of the database to `target`; returns its Alembic revision.

    `on_bytes` is called with the size written so far, now and then.
    """
    if dialect_of(engine) == "sqlite":
        return _dump_sqlite(_sqlite_path(engine), target, on_bytes)
    return _dump_postgresql(engine, target, on_bytes)


def ensure_database_empty(engine: Engine) -> None:
    """Refuse a target database that holds any table: a restore never mixes two databases."""
    if dialect_of(engine) == "sqlite":
        path = _sqlite_path(engine)
        tables = _sqlite_tables(path) if path.exists() else 0
    else:
        with engine.connect() as connection:
            tables = int(
                connection.execute(
                    text(
                        "SELECT count(*) FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'"
                    )
                ).scalar_one()
            )
    if tables:
        raise DomainError(
            "restore_target_not_empty",
            f"the target database holds {tables} tables or other relations; a restore goes "
            "only into an empty database: create a new one (PostgreSQL: `createdb`) or point "
            "MUTUALAID_DATABASE_URL at a new SQLite file",
            "database",
            details={"relations": tables},
        )


def restore_database(engine: Engine, dump: Path) -> None:
    """Load a dump made by `dump_database` into the (empty, checked) database of `engine`."""
    if dialect_of(engine) == "sqlite":
        _restore_sqlite(dump, _sqlite_path(engine))
    else:
        _restore_postgresql(engine, dump)


def database_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None when it has no schema)."""
    with engine.connect() as connection:
        exists = connection.execute(
            text("SELECT to_regclass('alembic_version') IS NOT NULL")
            if engine.dialect.name == "postgresql"
            else text(
                "SELECT count(*) > 0 FROM sqlite_master "
                "WHERE type = 'table' AND name = 'alembic_version'"
            )
        ).scalar_one()
        if not exists:
            return None
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return None if revision is None else str(revision)


# --------------------------------------------------------------------------------------------
# SQLite


def _sqlite_path(engine: Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:" or engine.url.query.get("mode") == "memory":
        raise DomainError(
            "backup_unsupported_database",
            "an in-memory SQLite database cannot be backed up or restored",
            "MUTUALAID_DATABASE_URL",
        )
    return Path(database)


def _sqlite_tables(path: Path) -> int:
    connection = sqlite3.connect(path, timeout=_SQLITE_TIMEOUT_S)
    try:
        return int(
            connection.execute(
                "SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
            ).fetchone()[0]
        )
    finally:
        connection.close()


def _dump_sqlite(source: Path, target: Path, on_bytes: Callable[[int], None]) -> str:
    if not source.is_file():
        raise DomainError(
            "database_empty", f"there is no database at {source}", "MUTUALAID_DATABASE_URL"
        )
    reader = sqlite3.connect(source, timeout=_SQLITE_TIMEOUT_S)
    writer = sqlite3.connect(target)
    try:
        # pages=-1: every page in one step, so one read transaction (a stepwise copy would start
        # over each time the service writes, and might never finish on a busy plan).
        reader.backup(writer, pages=-1)
        # A self-contained file: no -wal beside it.
        writer.execute("PRAGMA journal_mode=DELETE")
        revision = writer.execute(
            "SELECT version_num FROM alembic_version"
            if _has_alembic_table(writer)
            else "SELECT NULL"
        ).fetchone()[0]
    finally:
        writer.close()
        reader.close()
    on_bytes(target.stat().st_size)
    if revision is None:
        raise DomainError(
            "database_empty",
            "the database has no schema (run `mutualaid db upgrade` first): nothing to back up",
            "MUTUALAID_DATABASE_URL",
        )
    return str(revision)


def _has_alembic_table(connection: sqlite3.Connection) -> bool:
    row = connection.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
    ).fetchone()
    return bool(row[0])


def _restore_sqlite(dump: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    reader = sqlite3.connect(f"{dump.resolve().as_uri()}?mode=ro", uri=True)
    writer = sqlite3.connect(target, timeout=_SQLITE_TIMEOUT_S)
    try:
        reader.backup(writer, pages=-1)
    finally:
        writer.close()
        reader.close()


# --------------------------------------------------------------------------------------------
# PostgreSQL


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise DomainError(
            "backup_tool_missing",
            f"{name} is not installed on this machine: install the PostgreSQL client tools of "
            "the server's major version or newer (Debian: `apt install postgresql-client`)",
            name,
        )
    return path


def libpq_connection(engine: Engine) -> tuple[str, dict[str, str]]:
    """The connection string for libpq tools, without the password, and their environment."""
    url = engine.url
    environment = dict(os.environ)
    if url.password is not None:
        environment["PGPASSWORD"] = str(url.password)
    bare = URL.create(
        "postgresql",
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query=url.query,
    )
    return bare.render_as_string(hide_password=False), environment


def _run_tool(
    command: list[str],
    environment: dict[str, str],
    code: str,
    on_poll: Callable[[], None] = lambda: None,
) -> None:
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=environment,
    )
    while True:
        try:
            _, errors = process.communicate(timeout=_POLL_S)
            break
        except subprocess.TimeoutExpired:
            on_poll()
    if process.returncode != 0:
        lines = errors.decode("utf-8", "replace").strip().splitlines()
        reason = lines[-1] if lines else f"exit status {process.returncode}"
        tool = Path(command[0]).name
        raise DomainError(code, f"{tool} failed: {reason}", "database")


def _dump_postgresql(engine: Engine, target: Path, on_bytes: Callable[[int], None]) -> str:
    pg_dump = _tool("pg_dump")
    before = database_revision(engine)
    if before is None:
        raise DomainError(
            "database_empty",
            "the database has no schema (run `mutualaid db upgrade` first): nothing to back up",
            "MUTUALAID_DATABASE_URL",
        )
    conninfo, environment = libpq_connection(engine)

    def poll() -> None:
        if target.exists():
            on_bytes(target.stat().st_size)

    _run_tool(
        [pg_dump, "--format=custom", "--no-password", "--file", str(target), "--dbname", conninfo],
        environment,
        "backup_failed",
        poll,
    )
    on_bytes(target.stat().st_size)
    if database_revision(engine) != before:
        raise DomainError(
            "backup_failed",
            "the schema was migrated while the backup ran; run the backup again",
            "database",
        )
    return before


def _restore_postgresql(engine: Engine, dump: Path) -> None:
    pg_restore = _tool("pg_restore")
    conninfo, environment = libpq_connection(engine)
    _run_tool(
        [
            pg_restore,
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            "--no-password",
            "--dbname",
            conninfo,
            str(dump),
        ],
        environment,
        "restore_failed",
    )
