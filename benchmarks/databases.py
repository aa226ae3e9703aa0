"""What the PostgreSQL benchmarks need: a fresh PostgreSQL database at the newest schema, with the demo plan."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from mutualaid.db.engines import make_engine, make_sessionmaker
from mutualaid.db.schema import upgrade
from mutualaid.plan_files import read_plan_file
from mutualaid.services.context import ServiceContext
from mutualaid.services.personal_data import PersonalDataProtector
from mutualaid.services.plans.plans import publish_plan


def url_for(database: str) -> str:
    """The local PostgreSQL server (trust authentication), one database per benchmark."""
    return f"postgresql://postgres@127.0.0.1:5432/{database}"


DEFAULT_URL = url_for("bench")
#: A benchmark-only secret (40+ characters, not the demo key).
#: Random, so the settings' entropy check accepts it (a benchmark's data is thrown away).
BENCH_SECRET = "bench-Zq7Lw2Xv9Rk4Tn8Mp3Hs6Jd1Fc5Gb0Ya"


def server_env(url: str) -> dict[str, str]:
    """The environment of a benchmarked `mutualaid serve`: rate limits off (a load test from one
    address is exactly what they stop), warnings only."""
    return {
        **{k: v for k, v in os.environ.items() if k != "MUTUALAID_DEMO"},
        "MUTUALAID_DATABASE_URL": url,
        "MUTUALAID_SECRET_KEY": BENCH_SECRET,
        "MUTUALAID_LOG_LEVEL": "WARNING",
        "MUTUALAID_RATE_LIMIT_PER_TOKEN": "0",
        "MUTUALAID_RATE_LIMIT_PER_ADDRESS": "0",
        "MUTUALAID_RATE_LIMIT_REGISTRATIONS_PER_PHONE": "0",
        "MUTUALAID_RATE_LIMIT_REGISTRATIONS_PER_ADDRESS": "0",
    }


PLAN_CODE = "xhb-main"


def ensure_database(url: str) -> None:
    """CREATE DATABASE when it is missing (connecting to the `postgres` maintenance database)."""
    parsed = make_url(url)
    name = parsed.database
    if not name:
        raise SystemExit("the database URL names no database")
    if name == "test":
        raise SystemExit("refusing to benchmark in database `test` (the test suites use it)")
    admin = make_engine(
        parsed.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as connection:
        if (
            connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
            is None
        ):
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def fresh_context(url: str) -> ServiceContext:
    """Drop everything in the database, upgrade it to head, publish the demo plan."""
    ensure_database(url)
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    return plan_context(engine)


def plan_context(engine: Engine) -> ServiceContext:
    """`engine`'s database upgraded to head, with the demo plan published."""
    upgrade(engine)
    ctx = ServiceContext(
        engine=engine,
        sessions=make_sessionmaker(engine),
        protector=PersonalDataProtector(BENCH_SECRET),
    )
    publish_plan(ctx, None, read_plan_file(f"{PLAN_CODE}.toml"))
    return ctx


def backend_cpu_s(url: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends connected to `url`'s database (0 on
    SQLite, where the database's work is the benchmark's own process). The server is shared with
    other sessions, so only backends whose title names this database are counted; parallel
    workers, which exit when their query ends, are not (the figure is a lower bound)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return 0.0
    database = f" {parsed.database} "
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if not title.startswith("postgres: ") or database not in title:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / os.sysconf("SC_CLK_TCK")
