"""Which database a read that may lag goes to: the read replica, unless the caller must see a
write the replica has not replayed yet (docs/operations.md, "Read replica").

Only reads a service marks `ctx.reading(replica=True)` ever go to the replica (reports, public
plan pages and log endpoints, statements, proofs); every write, and every read inside a write,
stays on the primary. Reading your own write is exact, not a guess at the lag:

- a request that writes (POST, PUT, PATCH, DELETE) reads from the primary throughout, and so does
  a command or job after its first commit in this context (`mark_written`, an engine event);
- after a successful write the server hands the client the primary's WAL position (a cookie,
  api/read_your_writes.py); the client's next reads go to the replica only once the replica has
  replayed that far (`pg_last_wal_replay_lsn() >= it`, one query on the replica), else to the
  primary. So a member who files a claim sees it on every page at once, lag or no lag, while
  anonymous visitors and everyone else read from the replica;
- a replica that cannot be reached is logged and skipped: the primary answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import structlog
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

#: A PostgreSQL WAL position as it prints ("16/B374D848").
LSN = re.compile(r"[0-9A-F]{1,8}/[0-9A-F]{1,8}")

#: The WAL position the current caller must see (from its cookie), or None.
_seen_lsn: ContextVar[str | None] = ContextVar("mutualaid_seen_lsn", default=None)
#: True while the current request writes, or once this context has committed a write.
_primary_only: ContextVar[bool] = ContextVar("mutualaid_primary_only", default=False)


def parse_lsn(value: str | None) -> str | None:
    """The WAL position in `value` if it is one, else None (a cookie is client input)."""
    if value is None:
        return None
    value = value.strip().upper()
    return value if LSN.fullmatch(value) else None


@contextmanager
def request_scope(seen_lsn: str | None, primary_only: bool) -> Iterator[None]:
    """While a request is served: the position its client must see, and whether it writes."""
    seen = _seen_lsn.set(seen_lsn)
    only = _primary_only.set(primary_only)
    try:
        yield
    finally:
        _primary_only.reset(only)
        _seen_lsn.reset(seen)


def mark_written() -> None:
    """From now on this context reads from the primary (it has just committed a write)."""
    _primary_only.set(True)


def track_commits(engine: Engine) -> None:
    """Every commit on the primary `engine` marks its context as having written."""

    @event.listens_for(engine, "commit")
    def _committed(_connection: Any) -> None:
        mark_written()


def current_wal_lsn(engine: Engine) -> str | None:
    """The primary's WAL position now: at or past every commit made before the call."""
    with engine.connect() as connection:
        value = connection.execute(text("SELECT pg_current_wal_lsn()::text")).scalar()
    return str(value) if value is not None else None


def _caught_up(session: Session, lsn: str) -> bool:
    # NULL: not a standby (the "replica" is a primary, e.g. one URL for both): nothing to wait for.
    return bool(
        session.execute(
            text("SELECT coalesce(pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn), true)"),
            {"lsn": lsn},
        ).scalar()
    )


def replica_session(sessions: sessionmaker[Session], replica: Engine) -> Session | None:
    """A reading session on the replica for the current caller, or None: read from the primary."""
    if _primary_only.get():
        return None
    session = sessions(bind=replica)
    try:
        lsn = _seen_lsn.get()
        if lsn is None:
            session.connection()  # connect now, so an unreachable replica falls back here
        elif not _caught_up(session, lsn):
            session.close()
            return None
    except OperationalError:
        session.close()
        structlog.get_logger("mutualaid.db").warning("read_replica_unreachable")
        return None
    return session
