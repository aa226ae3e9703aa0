"""What every service needs: sessions, a clock, the personal-data protector and the hooks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from mutualaid.clock import Clock, SystemClock
from mutualaid.db.engines import make_engine, make_sessionmaker
from mutualaid.services.credit_checks import CreditCheck, load_credit_check
from mutualaid.services.evidence_store import EvidenceStore, FileSystemEvidenceStore, evidence_key
from mutualaid.services.personal_data import PersonalDataProtector
from mutualaid.settings import Settings


@dataclass
class ServiceContext:
    engine: Engine
    sessions: sessionmaker[Session]
    protector: PersonalDataProtector
    clock: Clock = field(default_factory=SystemClock)
    credit_check: CreditCheck | None = None
    token_ttl_hours: int = 24 * 30
    #: argon2id with the library's recommended parameters (RFC 9106 low-memory profile).
    password_hasher: PasswordHasher = field(default_factory=PasswordHasher)
    #: Where claim evidence is kept, encrypted and content-addressed (None: uploads are refused).
    evidence_store: EvidenceStore | None = None

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commits when the block ends, rolls back on any exception."""
        with self.sessions.begin() as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    @contextmanager
    def single_read(self) -> Iterator[Connection]:
        """A connection for one read-only statement. On PostgreSQL it runs in autocommit, which
        saves the BEGIN and ROLLBACK round trips (SQLite keeps its own transaction handling)."""
        with self.engine.connect() as connection:
            if self.engine.dialect.name == "postgresql":
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            yield connection


def build_context(settings: Settings, clock: Clock | None = None) -> ServiceContext:
    engine = make_engine(settings.database_url)
    return ServiceContext(
        engine=engine,
        sessions=make_sessionmaker(engine),
        protector=PersonalDataProtector(settings.secret_key),
        clock=clock or SystemClock(),
        credit_check=load_credit_check(settings.credit_check),
        token_ttl_hours=settings.token_ttl_hours,
        evidence_store=FileSystemEvidenceStore(settings.data_dir / "evidence",
                                               evidence_key(settings.secret_key)),
    )
