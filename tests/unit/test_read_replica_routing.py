"""Which database a lag-tolerant read goes to (db/replica.py), without a real replica: the
streaming-replica tests are tests/api/test_read_replica_api.py (`make test-replica`)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session

from mutualaid.db.engines import make_engine, make_sessionmaker
from mutualaid.db.replica import mark_written, parse_lsn, replica_session, request_scope
from mutualaid.settings import Settings

SECRET = secrets.token_urlsafe(48)


def test_a_read_replica_must_be_postgresql() -> None:
    with pytest.raises(ValidationError, match="PostgreSQL streaming replica"):
        Settings(secret_key=SECRET, read_database_url="sqlite:///var/replica.db")
    assert Settings(secret_key=SECRET, read_database_url="").read_database_url is None
    assert Settings(secret_key=SECRET).read_database_url is None


@pytest.mark.parametrize(
    ("cookie", "lsn"),
    [("3/2A5F1C0", "3/2A5F1C0"), ("0/16b3748", "0/16B3748"), ("'; DROP", None), ("1/", None)],
)
def test_only_a_wal_position_is_taken_from_the_cookie(cookie: str, lsn: str | None) -> None:
    assert parse_lsn(cookie) == lsn


def test_a_request_that_writes_and_a_context_that_wrote_read_the_primary(tmp_path: Path) -> None:
    replica = make_engine(f"sqlite:///{tmp_path / 'replica.db'}")
    sessions = make_sessionmaker(replica)
    try:
        with request_scope(None, primary_only=False):
            session = replica_session(sessions, replica)
            assert isinstance(session, Session) and session.get_bind() is replica
            session.close()
            mark_written()
            assert replica_session(sessions, replica) is None
        with request_scope(None, primary_only=True):
            assert replica_session(sessions, replica) is None
    finally:
        replica.dispose()


def test_an_unreachable_replica_leaves_the_read_to_the_primary() -> None:
    replica = make_engine(
        "postgresql://postgres@127.0.0.1:9/nothing", connect_args={"connect_timeout": 2}
    )
    try:
        with request_scope(None, primary_only=False):
            assert replica_session(make_sessionmaker(replica), replica) is None
    finally:
        replica.dispose()
