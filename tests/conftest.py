"""Shared fixtures: a real database (SQLite file, or PostgreSQL when MUTUALAID_TEST_DATABASE_URL is
set), migrated with Alembic once per run and emptied after each test; a clock tests can move."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from argon2 import PasswordHasher, profiles
from sqlalchemy import Engine, text

from mutualaid.clock import FixedClock
from mutualaid.db.engines import make_engine, make_sessionmaker
from mutualaid.db.models import Base
from mutualaid.db.schema import upgrade
from mutualaid.services.context import ServiceContext
from mutualaid.services.evidence_store import FileSystemEvidenceStore, evidence_key
from mutualaid.services.personal_data import PersonalDataProtector

TEST_SECRET = "test-secret-key-q8Zr2vLx7KpW4mNb9TfY3hJd"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    configured = os.environ.get("MUTUALAID_TEST_DATABASE_URL")
    if configured:
        return configured
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
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
