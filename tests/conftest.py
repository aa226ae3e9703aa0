"""Shared fixtures: a real database, migrated with Alembic once per run (per pytest-xdist worker)
and emptied after each test; a clock tests can move.

The database is always the run's own: a SQLite file in the worker's temporary folder, or, when
MUTUALAID_TEST_DATABASE_URL names a PostgreSQL server, a freshly created database
`mutualaid_test_<random>_<worker>` on that server, dropped at the end. The URL only says where the
server is and who to log in as; the database it names is never touched."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from tests.builders.wind_down import LOG_KEY, ORIGIN, WITNESS_KEYS
from tests.mailboxes import Mailbox, SmtpServer

from mutualaid.clock import FixedClock
from mutualaid.db.engines import make_engine, make_sessionmaker
from mutualaid.db.models import Base
from mutualaid.db.schema import upgrade
from mutualaid.services.context import ServiceContext
from mutualaid.services.evidence_store import FileSystemEvidenceStore, evidence_key
from mutualaid.services.personal_data import PersonalDataProtector
from mutualaid.services.transparency.checkpoints import LogConfig, WitnessEndpoint
from mutualaid.transparency.verification import TrustPolicy
from mutualaid.transparency.witness_server import WitnessStore, create_witness_app

TEST_SECRET = "test-secret-key-q8Zr2vLx7KpW4mNb9TfY3hJd"


def _worker_name() -> str:
    # "gw0", "gw1"... under pytest-xdist; "main" in a serial run.
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _postgres_database(server_url: str) -> Iterator[str]:
    """Create a database of our own on the server `server_url` points at, yield its URL, drop it."""
    name = f"mutualaid_test_{secrets.token_hex(4)}_{_worker_name()}"
    server = make_url(server_url)
    # The maintenance database, to create and drop ours from; AUTOCOMMIT because CREATE/DROP
    # DATABASE cannot run inside a transaction.
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server_url = os.environ.get("MUTUALAID_TEST_DATABASE_URL")
    if server_url:
        yield from _postgres_database(server_url)
    else:
        # tmp_path_factory is already per worker under pytest-xdist.
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _empty_all_tables(engine: Engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def clock() -> FixedClock:
    # 10:00 in Shanghai on 1 March 2026.
    return FixedClock(datetime(2026, 3, 1, 2, 0, tzinfo=UTC))


@pytest.fixture
def ctx(
    engine: Engine, clock: FixedClock, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceContext]:
    context = ServiceContext(
        engine=engine,
        sessions=make_sessionmaker(engine),
        protector=PersonalDataProtector(TEST_SECRET),
        clock=clock,
        # The cheapest argon2 parameters: tests check behaviour, not brute-force resistance.
        password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST),
        evidence_store=FileSystemEvidenceStore(
            tmp_path_factory.mktemp("evidence"), evidence_key(TEST_SECRET)
        ),
        upload_dir=tmp_path_factory.mktemp("data") / "partial-uploads",
    )
    try:
        yield context
    finally:
        _empty_all_tables(engine)


@pytest.fixture
def witnesses(tmp_path: Path) -> Iterator[tuple[LogConfig, httpx.Client, TrustPolicy]]:
    """Two witness apps reached in process; the quorum is both of them."""
    stores = [WitnessStore(tmp_path / f"w{n}.sqlite") for n in range(2)]
    clients = {
        f"w{n}.test": TestClient(
            create_witness_app(key, [LOG_KEY.verifier()], stores[n], clock=lambda: 1_780_000_000)
        )
        for n, key in enumerate(WITNESS_KEYS)
    }

    def route(request: httpx.Request) -> httpx.Response:
        answer = clients[request.url.host].post(request.url.path, content=request.content)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    endpoints = tuple(
        WitnessEndpoint(f"w{n}", key.verifier(), f"http://w{n}.test")
        for n, key in enumerate(WITNESS_KEYS)
    )
    policy = TrustPolicy(ORIGIN, LOG_KEY.verifier(), tuple(k.verifier() for k in WITNESS_KEYS), 2)
    with httpx.Client(transport=httpx.MockTransport(route)) as http:
        yield LogConfig(LOG_KEY, endpoints, quorum=2), http, policy
    for store in stores:
        store.close()


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    """A real SMTP server on localhost; what it receives is in the Mailbox."""
    with SmtpServer() as mailbox:
        yield mailbox
