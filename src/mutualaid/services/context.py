"""What every service needs: sessions, a clock, the personal-data protector and the hooks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TypeVar

from argon2 import PasswordHasher
from pydantic import SecretStr
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from mutualaid.clock import Clock, SystemClock
from mutualaid.db.engines import READ_ONLY, make_engine, make_sessionmaker
from mutualaid.db.replica import replica_session, track_commits
from mutualaid.services.credit_checks import CreditCheck, load_credit_check
from mutualaid.services.evidence_store import (
    EvidenceStore,
    FileSystemEvidenceStore,
    evidence_keys,
)
from mutualaid.services.idempotency import Once, UnitOfWork
from mutualaid.services.personal_data import PersonalDataProtector
from mutualaid.settings import Settings

R = TypeVar("R")

_autocommit_engines: dict[str, Engine] = {}


def autocommit_engine(engine: Engine) -> Engine:
    """A second pool on the same database whose connections stay in autocommit: switching a
    pooled connection in and out of autocommit on every checkout costs more than the query.
    One per database URL per process, like the main engine."""
    url = engine.url.render_as_string(hide_password=False)
    pool = _autocommit_engines.get(url)
    if pool is None:
        pool = _autocommit_engines[url] = make_engine(url, isolation_level="AUTOCOMMIT")
    return pool


# The context's configuration of capabilities (kept here so the kernel imports no capability).


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Mutating requests allowed per window (services/accounts/rate_limits.py); 0: no limit."""

    window_s: int = 60
    per_token: int = 600
    per_address: int = 3000
    #: Registrations (new accounts and bindings of imported ones) per hour, per phone number and
    #: per client address: a stolen list of phone numbers cannot be tried at speed.
    registrations_per_phone: int = 5
    registrations_per_address: int = 20


@dataclass(frozen=True, slots=True)
class OidcConfig:
    """Staff sign-in through the operator's OpenID Connect provider (services/accounts/oidc.py)."""

    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    claim: str = "phone_number"
    mfa_value: str = ""

    def __repr__(self) -> str:  # the client secret never reaches a log line
        return f"OidcConfig(issuer={self.issuer!r}, client_id={self.client_id!r})"


@dataclass(frozen=True, slots=True)
class AlipayConfig:
    """The Alipay open-platform app (services/payments/alipay.py); keys as PEM text."""

    app_id: str
    private_key: str
    gateway_public_key: str
    gateway_url: str
    notify_url: str

    def __repr__(self) -> str:  # the private key never reaches a log line
        return f"AlipayConfig(app_id={self.app_id!r}, gateway_url={self.gateway_url!r})"


@dataclass(frozen=True, slots=True)
class MessageChannels:
    """Apprise notification URLs per channel (services/notifications/channels.py; None: that
    channel's messages go to the log) and the site's address for links in messages."""

    email_url: str | None = None
    sms_url: str | None = None
    webhook_url: str | None = None
    public_url: str = "http://localhost:8000"

    def __repr__(self) -> str:  # the URLs hold gateway credentials
        return f"MessageChannels(public_url={self.public_url!r})"


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
    #: Where resumable uploads wait, encrypted, owner-only (None: only one-shot uploads).
    upload_dir: Path | None = None
    #: Requests per window on mutating routes (services/accounts/rate_limits.py).
    rate_limits: RateLimits = field(default_factory=RateLimits)
    #: Staff sign-in through the operator's OpenID Connect provider (None: not offered).
    oidc: OidcConfig | None = None
    #: A streaming replica of `engine` for reads that may lag (None: the primary answers them);
    #: see db/replica.py for who reads from it and when.
    replica: Engine | None = None
    #: The Alipay app, for plans that pay through Alipay (None: not configured).
    alipay: AlipayConfig | None = None
    #: Where outbound messages go (services/notifications); the log with nothing configured.
    messages: MessageChannels = field(default_factory=MessageChannels)
    #: Threads, each on its own connection, for the scans that read a whole plan (the charges
    #: tree of a period close): about one per core the database may use.
    scan_threads: int = 2

    @property
    def parallel_readers(self) -> int:
        """`scan_threads`, or 1 where another connection would not see the same database
        (SQLite in memory: each connection is a database of its own)."""
        database = self.engine.url.database
        if self.engine.dialect.name == "sqlite" and (not database or database == ":memory:"):
            return 1
        return max(1, self.scan_threads)

    def unit_of_work(self, once: Once[R] | None = None) -> UnitOfWork[R]:
        """The use case's transaction: rolled back unless `commit` is called (idempotency.py)."""
        return UnitOfWork(self, once)

    @cached_property
    def _reader(self) -> Engine:
        return self.engine.execution_options(**{READ_ONLY: True})

    @contextmanager
    def reading(self, *, replica: bool = False) -> Iterator[Session]:
        """A session for reads only (on SQLite a deferred transaction that takes no write lock).

        `replica=True`: the read may be served by the read replica (reports, public pages,
        statements, proofs), which db/replica.py picks only when it has replayed every write
        the caller must see; otherwise, and without a replica, the primary.
        """
        session = replica_session(self.sessions, self.replica) if replica and self.replica else None
        with session or self.sessions(bind=self._reader) as chosen:
            yield chosen

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A connection whose statements each stand alone (a read, or one atomic write).

        On PostgreSQL each commits by itself, which saves the BEGIN and COMMIT round trips of the
        hottest paths (token checks, votes). SQLite keeps its BEGIN IMMEDIATE recipe (its
        autocommit switch would undo it), so there the block is one transaction.
        """
        if self.engine.dialect.name == "postgresql":
            with autocommit_engine(self.engine).connect() as connection:
                yield connection
        else:
            with self.engine.begin() as connection:
                yield connection


def build_context(settings: Settings, clock: Clock | None = None) -> ServiceContext:
    engine = make_engine(settings.database_url)
    replica = None
    if settings.read_database_url:
        replica = make_engine(settings.read_database_url)
        track_commits(engine)
    return ServiceContext(
        engine=engine,
        sessions=make_sessionmaker(engine),
        protector=PersonalDataProtector(settings.key_ring_secrets),
        clock=clock or SystemClock(),
        credit_check=load_credit_check(settings.credit_check),
        token_ttl_hours=settings.token_ttl_hours,
        scan_threads=settings.scan_threads,
        rate_limits=RateLimits(
            settings.rate_limit_window_s,
            settings.rate_limit_per_token,
            settings.rate_limit_per_address,
            settings.rate_limit_registrations_per_phone,
            settings.rate_limit_registrations_per_address,
        ),
        evidence_store=FileSystemEvidenceStore(
            settings.data_dir / "evidence", evidence_keys(settings.key_ring_secrets)
        ),
        upload_dir=settings.data_dir / "partial-uploads",
        oidc=_oidc_config(settings),
        replica=replica,
        alipay=_alipay_config(settings),
        messages=MessageChannels(
            email_url=_secret(settings.notify_email_url),
            sms_url=_secret(settings.notify_sms_url),
            webhook_url=_secret(settings.notify_webhook_url),
            public_url=settings.public_url,
        ),
    )


def _alipay_config(settings: Settings) -> AlipayConfig | None:
    if not (
        settings.alipay_app_id
        and settings.alipay_private_key_file
        and settings.alipay_public_key_file
    ):
        return None
    return AlipayConfig(
        app_id=settings.alipay_app_id,
        private_key=settings.alipay_private_key_file.read_text(),
        gateway_public_key=settings.alipay_public_key_file.read_text(),
        gateway_url=settings.alipay_gateway_url,
        notify_url=settings.public_url.rstrip("/") + "/api/v1/payments/alipay/notify",
    )


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _oidc_config(settings: Settings) -> OidcConfig | None:
    if not (settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret):
        return None
    # Imported here: services.oidc builds on the services that import this module.

    return OidcConfig(
        issuer=settings.oidc_issuer,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret.get_secret_value(),
        redirect_uri="",  # the web page fills in its own /oidc/callback address
        claim=settings.oidc_claim,
        mfa_value=settings.oidc_mfa_value,
    )
