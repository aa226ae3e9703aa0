"""Periods at scale: close (lock, share, commitment, notice), statement, collection file, proof.

Builds a database with N members (accounts, persons and memberships: families of up to three,
members who left, members suspended), 75 earlier periods (71 from 2023 to 2025 and four in 2026,
so that a long-standing member's statement covers 76 periods), a few thousand collection failures,
and N × 7×10⁻⁴ / 24 approved cases (Xiang Hu Bao's claim rate), all with set-based SQL. Then runs
each measurement in a fresh child process, so that its peak memory is its own:

* close   — `close_period` for 7 March 2026, then `period_notice`; baseline: a bare
            ``SELECT count(*) FROM memberships`` (one full scan) in the same process;
* statement — `member_statement` of 200 long-standing members (median, p95); baseline: reading
            the membership row by primary key;
* export  — `export_collection_file` to a file; baselines: the scan counting the same lines,
            and writing as many CSV lines from Python without a database;
* proof   — `charge_proof` of one member: the first (which builds the period's tree from its
            stored leaf hashes) and the median of 19 more (the tree is kept); baseline: reading
            the member's block of memberships.

    python benchmarks/bench_periods.py --db sqlite --members 10000000
    python benchmarks/bench_periods.py --db postgresql --members 10000000
    python benchmarks/bench_periods.py --db postgresql --members 100000000 --memberships-only
    python benchmarks/bench_periods.py --db sqlite --members 10000000 --reuse --capped

`--reuse` keeps a database loaded before (the close is reset first); `--capped` publishes a plan
version with an annual cap the long-standing members have reached, so the close counts cohorts.
`--memberships-only` loads no persons/accounts and drops the memberships' foreign keys (only for
sizes the disk cannot hold otherwise; the close reads memberships alone).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from databases import backend_cpu_s
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url

from mutualaid.clock import FixedClock
from mutualaid.db.engines import make_engine, make_sessionmaker
from mutualaid.db.schema import upgrade
from mutualaid.domain.sharing import SharingRule
from mutualaid.plan_files import read_plan_file
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.context import ServiceContext
from mutualaid.services.personal_data import PersonalDataProtector
from mutualaid.services.plans.plans import publish_plan

PLAN = "xhb-main"
CLOSE_ON = date(2026, 3, 7)
LOCK_AT = datetime(2026, 3, 6, 16, tzinfo=UTC)
CLOSE_CLOCK = datetime(2026, 3, 7, 1, tzinfo=UTC)
SECRET = "benchmark-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
DEFAULT_SQLITE = Path(tempfile.gettempdir()) / "bench_periods" / "periods.db"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/bench_periods"
START = datetime(2022, 1, 1, tzinfo=UTC)
END = datetime(2026, 3, 5, tzinfo=UTC)
CLAIM_RATE_PER_PERIOD = 7e-4 / 24


def say(message: str) -> None:
    print(message, flush=True)


def context(url: str, clock: FixedClock | None = None) -> ServiceContext:
    engine = make_engine(url)
    return ServiceContext(
        engine=engine,
        sessions=make_sessionmaker(engine),
        protector=PersonalDataProtector(SECRET),
        clock=clock or FixedClock(CLOSE_CLOCK),
        # As the server reads it (settings.py); --scan-threads sets it for the children.
        scan_threads=int(os.environ.get("MUTUALAID_SCAN_THREADS", "2")),
    )


# --- loading ------------------------------------------------------------------------------------


def fresh_database(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = make_engine(url)
    else:
        if parsed.database in ("test", "postgres"):
            raise SystemExit(f"refusing to benchmark in database {parsed.database!r}")
        admin = make_engine(
            parsed.set(database="postgres").render_as_string(hide_password=False),
            isolation_level="AUTOCOMMIT",
        )
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}"'))
            connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
        admin.dispose()
        engine = make_engine(url)
    upgrade(engine)
    return engine


def _ts(dialect: str, seconds_expr: str) -> str:
    """An instant `seconds_expr` seconds after START, as each database stores UtcDateTime."""
    if dialect == "sqlite":
        return (
            f"(datetime('2022-01-01 00:00:00', '+' || ({seconds_expr}) || ' seconds') || '.000000')"
        )
    return f"(timestamptz '2022-01-01 00:00:00+00' + ({seconds_expr}) * interval '1 second')"


def _day(dialect: str, ts: str, days: str = "0") -> str:
    if dialect == "sqlite":
        return f"date(substr({ts}, 1, 19), '+' || ({days}) || ' days')"
    return f"(({ts} AT TIME ZONE 'UTC')::date + ({days})::int)"


def _birth(dialect: str) -> str:
    if dialect == "sqlite":
        return "date('1967-01-01', '+' || (i % 15000) || ' days')"
    return "(date '1967-01-01' + (i % 15000)::int)"


def load(url: str, members: int, memberships_only: bool) -> None:
    started = time.perf_counter()
    engine = fresh_database(url)
    dialect = engine.dialect.name
    ctx = context(url, FixedClock(datetime(2021, 12, 1, tzinfo=UTC)))
    publish_plan(ctx, None, read_plan_file(f"{PLAN}.toml"))
    with engine.connect() as connection:
        plan_id = connection.execute(
            text("SELECT id FROM plans WHERE code = :c"), {"c": PLAN}
        ).scalar_one()
    span = int((END - START).total_seconds())
    # Membership i: a holder, or (i % 10 in 3, 7) a family member paid for by i - 1, joining 30
    # days after them. Joining instants spread evenly from 2022 to March 2026.
    base = f"(i * {span} / {members})"
    family = "(i % 10 = 3 OR i % 10 = 7)"
    joined = _ts(dialect, f"{base} + CASE WHEN {family} THEN 2592000 ELSE 0 END")
    left = _ts(dialect, f"{base} + 34560000")  # 400 days later
    leaves = f"(i % 33 = 0 AND {base} + 34560000 < {span} - 864000)"
    series = (
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n) "
        if dialect == "sqlite"
        else ""
    )
    source = "FROM s" if dialect == "sqlite" else "FROM generate_series(1::bigint, :n) AS s(i)"
    statements = []
    if not memberships_only:
        statements.append(f"""{series}
            INSERT INTO accounts (id, phone, password_hash, role, display_name, locale, created_at)
            SELECT i, {
            "'1' || substr('0000000000' || i, -10, 10)"
            if dialect == "sqlite"
            else "'1' || lpad(i::text, 10, '0')"
        }, NULL, 'member', NULL, 'zh_CN',
                   {_ts(dialect, base)} {source} WHERE NOT {family}""")
        statements.append(f"""{series}
            INSERT INTO persons (id, account_id, relation, identity_hash, identity_ciphertext,
                                 name_ciphertext, name_masked, birth_on, sex, province_code, created_at)
            SELECT i, CASE WHEN {family} THEN i - 1 ELSE i END,
                   CASE WHEN i % 10 = 3 THEN 'child' WHEN i % 10 = 7 THEN 'spouse' ELSE 'self' END,
                   {"printf('%064x', i)" if dialect == "sqlite" else "lpad(to_hex(i), 64, '0')"},
                   {"randomblob(24)" if dialect == "sqlite" else "decode(md5(i::text), 'hex')"},
                   {"randomblob(24)" if dialect == "sqlite" else "decode(md5((-i)::text), 'hex')"},
                   '张*华', {_birth(dialect)},
                   CASE WHEN i % 2 = 0 THEN 'F' ELSE 'M' END, '33', {_ts(dialect, base)}
            {source}""")
    statements.append(f"""{series}
        INSERT INTO memberships (id, plan_id, plan_version, person_id, payer_account_id, state,
                                 joined_at, joined_on, waiting_ends_on, covered_from_on,
                                 ages_out_on, ended_at, end_reason)
        SELECT i, {plan_id}, 1, i, CASE WHEN {family} THEN i - 1 ELSE i END,
               CASE WHEN {leaves} THEN 'left' WHEN i % 1009 = 0 THEN 'suspended' ELSE 'covered' END,
               {joined}, {_day(dialect, joined)}, {_day(dialect, joined, "90")},
               {_day(dialect, joined, "91")}, {_day(dialect, _ts(dialect, "0"), "10000 + (i % 3000)")},
               CASE WHEN {leaves} THEN {left} END, CASE WHEN {leaves} THEN 'left' END
        {source}""")
    with engine.begin() as connection:
        saved = _drop_secondary(connection, dialect, memberships_only)
        for statement in statements:
            t = time.perf_counter()
            connection.execute(text(statement), {"n": members})
            say(
                f"  loaded {statement.split('INSERT INTO ')[1].split()[0]} in "
                f"{time.perf_counter() - t:.0f} s"
            )
        t = time.perf_counter()
        for ddl in saved:
            connection.execute(text(ddl))
        say(f"  indexes rebuilt in {time.perf_counter() - t:.0f} s")
        _history(connection, dialect, plan_id, members)
        _cases(connection, dialect, plan_id, members, memberships_only)
    with engine.connect() as connection:
        if dialect == "postgresql":
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE")
            )
    engine.dispose()
    say(f"loaded {members:,} members in {time.perf_counter() - started:.0f} s")


def _drop_secondary(connection: Any, dialect: str, memberships_only: bool) -> list[str]:
    """Drop the secondary indexes (and, without people, the memberships' foreign keys) for the
    bulk load; return the DDL that puts the indexes back."""
    tables = ("accounts", "persons", "memberships")
    saved: list[str] = []
    if dialect == "sqlite":
        rows = connection.execute(
            text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                f"AND tbl_name IN {tables}"
            )
        ).all()
        for name, sql in rows:
            connection.execute(text(f'DROP INDEX "{name}"'))
            saved.append(sql)
        connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
        return saved
    rows = connection.execute(
        text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(:t) "
            "AND indexname NOT LIKE 'pk_%'"
        ),
        {"t": list(tables)},
    ).all()
    # Without people, claims and collection failures cannot point at persons and accounts either.
    fk_tables = (
        [*tables, "claims", "collection_failures", "period_charge_exceptions"]
        if memberships_only
        else list(tables)
    )
    fks = connection.execute(
        text(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'f' AND conrelid::regclass::text = ANY(:t)"
        ),
        {"t": fk_tables},
    ).all()
    for table, name, _ in fks:
        connection.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
    for name, ddl in rows:
        constraint = connection.execute(
            text("SELECT conrelid::regclass::text FROM pg_constraint WHERE conname = :n"),
            {"n": name},
        ).first()
        if constraint is not None:
            connection.execute(text(f'ALTER TABLE {constraint[0]} DROP CONSTRAINT "{name}"'))
            saved.append(
                f'ALTER TABLE {constraint[0]} ADD CONSTRAINT "{name}" UNIQUE USING INDEX "{name}"'
            )
            saved.insert(0, ddl)
        else:
            connection.execute(text(f'DROP INDEX "{name}"'))
            saved.append(ddl)
    if not memberships_only:
        saved += [
            f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
            for table, name, definition in fks
        ]
    return saved


def _history(connection: Any, dialect: str, plan_id: int, members: int) -> None:
    """75 earlier periods (paid), and a few thousand collection failures in them."""
    days = [
        date(year, month, day)
        for year in (2023, 2024, 2025)
        for month in range(1, 13)
        for day in (7, 21)
    ][1:]
    days += [date(2026, 1, 7), date(2026, 1, 21), date(2026, 2, 7), date(2026, 2, 21)]
    rows = []
    for number, day in enumerate(days):
        share = 300 + (number * 37) % 250
        lock = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=8)
        cases = max(1, round(members * CLAIM_RATE_PER_PERIOD))
        aid = cases * 15_000_000
        rows.append(
            {
                "ref": f"{PLAN}/{day.isoformat()}",
                "plan_id": plan_id,
                "publicity_on": day,
                "debit_on": day + timedelta(days=7),
                "lock_at": lock,
                "member_count": members,
                "case_count": cases,
                "aid_fen": aid,
                "fee_fen": aid * 8 // 100,
                "share_fen": share,
                "total_fen": share * members,
                "surplus_fen": 1234 + number,
                "at": lock + timedelta(days=1),
            }
        )
    connection.execute(
        text("""
        INSERT INTO periods (ref, plan_id, plan_version, publicity_on, debit_on, lock_at, state,
            cap_excess, fee_bp, per_case_cap_fen, annual_cap_fen, payment_retry_days, member_count,
            case_count, aid_fen, sponsored_aid_fen, fee_fen, surplus_in_fen, uncapped_share_fen,
            share_fen, total_charged_fen, capped_fen, sponsor_fen, prorated_fen, surplus_out_fen,
            charges_root, charges_leaves, failed_fen, locked_at, computed_at, committed_at,
            collected_at, paid_at)
        VALUES (:ref, :plan_id, 1, :publicity_on, :debit_on, :lock_at, 'paid', 'sponsor', 800, 10,
            18800, 5, :member_count, :case_count, :aid_fen, 0, :fee_fen, 0, :share_fen, :share_fen,
            :total_fen, 0, 0, 0, :surplus_fen, NULL, 0, 0, :at, :at, :at, :at, :at)"""),
        rows,
    )
    period_ids = (
        connection.execute(
            text("SELECT id FROM periods WHERE plan_id = :p ORDER BY publicity_on"), {"p": plan_id}
        )
        .scalars()
        .all()
    )
    series = (
        "WITH RECURSIVE s(i) AS (SELECT 997 UNION ALL SELECT i + 997 FROM s WHERE i + 997 <= :n) "
        if dialect == "sqlite"
        else ""
    )
    source = "FROM s" if dialect == "sqlite" else "FROM generate_series(997, :n, 997) AS s(i)"
    for period_id in period_ids[::12]:
        at = connection.execute(
            text("SELECT lock_at FROM periods WHERE id = :i"), {"i": period_id}
        ).scalar_one()
        connection.execute(
            text(f"""{series}
            INSERT INTO collection_failures (period_id, membership_id, payer_account_id, amount_fen,
                status, attempts, retry_until_on, first_failed_at, last_attempt_at, suspended_at,
                resolved_at)
            SELECT :p, i, CASE WHEN i % 10 = 3 OR i % 10 = 7 THEN i - 1 ELSE i END, 400,
                   'paid_late', 2, :until, :at, :at, :at, :at {source}"""),
            {"p": period_id, "n": members, "until": date(2020, 1, 1), "at": at},
        )


def _cases(
    connection: Any, dialect: str, plan_id: int, members: int, memberships_only: bool
) -> None:
    cases = max(1, round(members * CLAIM_RATE_PER_PERIOD))
    step = max(1, members // cases)
    rows = [
        {
            "ref": f"bench-{j:07d}",
            "plan_id": plan_id,
            "m": 5 + j * step,
            "payer": 5 + j * step - (1 if (5 + j * step) % 10 in (3, 7) else 0),
            "payout": (30_000_000, 10_000_000, 5_000_000)[j % 3],
            "tier": "mild" if j % 3 == 2 else "severe",
            "at": LOCK_AT - timedelta(days=2),
            "on": date(2026, 1, 10),
        }
        for j in range(cases)
        if 5 + j * step <= members
    ]
    if memberships_only:
        # No people were loaded: the claimants alone get a person row, for the notice.
        connection.execute(
            text("""
            INSERT INTO persons (id, account_id, relation, identity_hash, identity_ciphertext,
                name_ciphertext, name_masked, birth_on, sex, province_code, created_at)
            VALUES (:m, :m, 'self', :hash, :blob, :blob, '张*华', :on, 'M', '33', :at)"""),
            [row | {"hash": f"{row['m']:064x}", "blob": b"x" * 24} for row in rows],
        )
    connection.execute(
        text("""
        INSERT INTO claims (ref, plan_id, plan_version, membership_id, person_id,
            claimant_account_id, illness_code, tier, accident, diagnosed_on, hospital,
            age_at_diagnosis, payout_fen, state, reported_at, reported_on, approved_at, sponsored,
            updated_at)
        VALUES (:ref, :plan_id, 1, :m, :m, :payer, 'CI01', :tier, false, :on, '浙江省肿瘤医院', 35,
            :payout, 'approved', :at, :on, :at, false, :at)"""),
        rows,
    )


# --- resetting between runs ---------------------------------------------------------------------


def reset(url: str, capped: bool, rule: str = "uniform") -> None:
    """Undo an earlier close of 7 March, so that the close can be measured again."""
    engine = make_engine(url)
    with engine.begin() as connection:
        period = connection.execute(
            text("SELECT id, ref FROM periods WHERE ref = :r"),
            {"r": f"{PLAN}/{CLOSE_ON.isoformat()}"},
        ).first()
        if period is not None:
            pid, ref = period
            for sql in (
                "DELETE FROM ledger_entries WHERE transaction_id IN "
                "(SELECT id FROM ledger_transactions WHERE period_id = :p)",
                "DELETE FROM ledger_transactions WHERE period_id = :p",
                "DELETE FROM period_charge_trees WHERE period_id = :p",
                "DELETE FROM period_cohorts WHERE period_id = :p",
                "DELETE FROM period_bands WHERE period_id = :p",
                "DELETE FROM period_charge_exceptions WHERE period_id = :p",
                "DELETE FROM collection_failures WHERE period_id = :p",
                "UPDATE claims SET period_id = NULL WHERE period_id = :p",
                "DELETE FROM periods WHERE id = :p",
            ):
                connection.execute(text(sql), {"p": pid})
            connection.execute(text("DELETE FROM log_entries WHERE subject_ref = :r"), {"r": ref})
    engine.dispose()
    ctx = context(url, FixedClock(datetime(2026, 3, 1, tzinfo=UTC)))
    source = read_plan_file(f"{PLAN}.toml")
    if capped:
        source = source.replace("annual_fen = 18_800", "annual_fen = 1_500")
    source = source.replace('sharing_rule = "uniform"', f'sharing_rule = "{rule}"')
    publish_plan(ctx, None, source)
    ctx.engine.dispose()


# --- the measurements (each in its own process) -----------------------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(action: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def cpu_timed(url: str, action: Any) -> tuple[float, float, float, Any]:
    """(wall s, this process's CPU s, our PostgreSQL backends' CPU s, result)."""
    cpu, server = time.process_time(), backend_cpu_s(url)
    wall, result = timed(action)
    return wall, time.process_time() - cpu, backend_cpu_s(url) - server, result


class _StatementTimes:
    """Seconds and calls per statement shape (its first words), from the engine's events."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, statement: str, seconds: float) -> None:
        shape = " ".join(statement.split())[:70]
        with self._lock:
            self.seconds[shape] = self.seconds.get(shape, 0.0) + seconds
            self.calls[shape] = self.calls.get(shape, 0) + 1

    def slowest(self, count: int = 8) -> list[list[Any]]:
        ranked = sorted(self.seconds.items(), key=lambda item: -item[1])[:count]
        return [[round(seconds, 3), self.calls[shape], shape] for shape, seconds in ranked]


def _statement_profile(engine: Engine) -> _StatementTimes:
    times = _StatementTimes()

    @event.listens_for(engine, "before_cursor_execute")
    def _before(
        conn: Any, _cursor: Any, _statement: Any, _params: Any, _ctx: Any, _many: Any
    ) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _after(
        conn: Any, _cursor: Any, statement: str, _params: Any, _ctx: Any, _many: Any
    ) -> None:
        times.add(statement, time.perf_counter() - conn.info["bench_started"].pop())

    return times


def child_close(url: str) -> dict[str, Any]:
    from sqlalchemy import func, select

    from mutualaid.db.models import Membership
    from mutualaid.services.periods.close import close_period
    from mutualaid.services.periods.notice import period_notice
    from mutualaid.services.periods.sharing import sharing_where

    ctx = context(url)
    # The least any close must do: count who was a member at the lock, in one scan.
    with ctx.reading() as session:
        plan_id = session.execute(
            text("SELECT id FROM plans WHERE code = :c"), {"c": PLAN}
        ).scalar_one()
        count = (
            select(func.count())
            .select_from(Membership)
            .where(*sharing_where(session, plan_id, LOCK_AT, CLOSE_ON))
        )
        for _ in range(2):  # the second scan is the warm one
            baseline, base_cpu, base_server, _ = cpu_timed(
                url, lambda: session.execute(count).scalar_one()
            )
    steps: dict[str, float] = {}
    started = time.perf_counter()

    def hook(name: str) -> None:
        steps[name] = time.perf_counter() - started

    statements = _statement_profile(ctx.engine)

    close_s, close_cpu, close_server, period = cpu_timed(
        url, lambda: close_period(ctx, SYSTEM_ACTOR, PLAN, CLOSE_ON, hook=hook)
    )
    notice_s, notice = timed(lambda: period_notice(ctx, PLAN, CLOSE_ON))
    assert all(check.holds for check in notice.checks), notice.checks
    return {
        # CPU seconds (this process + our PostgreSQL backends): steadier than wall time on a
        # shared machine; the count's parallel workers are not in its server figure.
        "baseline_cpu_s": [round(base_cpu, 3), round(base_server, 3)],
        "close_cpu_s": [round(close_cpu, 3), round(close_server, 3)],
        "baseline_count_sharing_s": baseline,
        "close_s": close_s,
        "notice_s": notice_s,
        "total_s": close_s + notice_s,
        "ratio_to_baseline": (close_s + notice_s) / baseline,
        "steps_s": steps,
        # Where the close's time goes: seconds per statement shape (the scan's threads overlap,
        # so their sum can exceed the wall time), slowest first.
        "statements_s": statements.slowest(),
        "members": period.member_count,
        "cases": period.case_count,
        "share_fen": period.share_fen,
        "total_charged_fen": period.total_charged_fen,
        "leaves": period.charges_leaves,
        "peak_rss_mb": peak_rss_mb(),
    }


def _statement_members(ctx: ServiceContext, count: int) -> list[int]:
    with ctx.engine.connect() as connection:
        top = connection.execute(text("SELECT max(id) FROM memberships")).scalar_one()
    # Holders who joined in 2022 and never left: they shared in every period since 2023.
    limit = top // 5
    step = max(1, limit // (count + 1))
    ids = [i for i in range(11, limit, step) if i % 10 not in (3, 7) and i % 33 and i % 1009]
    return ids[:count]


def child_statement(url: str) -> dict[str, Any]:
    from mutualaid.db.models import Membership
    from mutualaid.services.periods.statements import member_statement

    ctx = context(url)
    ids = _statement_members(ctx, 200)
    lines = len(member_statement(ctx, SYSTEM_ACTOR, ids[0]).lines)
    timings = []
    for membership_id in ids:
        seconds, _ = timed(lambda m=membership_id: member_statement(ctx, SYSTEM_ACTOR, m))
        timings.append(seconds)
    baseline = []
    for membership_id in ids:

        def read(m: int = membership_id) -> Any:
            with ctx.reading() as session:
                return session.get(Membership, m)

        seconds, _ = timed(read)
        baseline.append(seconds)
    median = statistics.median(timings)
    return {
        "periods_in_statement": lines,
        "median_ms": median * 1000,
        "p95_ms": sorted(timings)[int(len(timings) * 0.95)] * 1000,
        "baseline_pk_read_median_ms": statistics.median(baseline) * 1000,
        "ratio_to_baseline": median / statistics.median(baseline),
        "peak_rss_mb": peak_rss_mb(),
    }


def child_export(url: str) -> dict[str, Any]:
    from sqlalchemy import func, select

    from mutualaid.db.models import Membership
    from mutualaid.services.collections.files import export_collection_file
    from mutualaid.services.periods.sharing import sharing_where

    ctx = context(url)
    with ctx.reading() as session:  # the database's part alone: one scan counting the lines
        plan_id = session.execute(
            text("SELECT id FROM plans WHERE code = :c"), {"c": PLAN}
        ).scalar_one()
        count = (
            select(func.count())
            .select_from(Membership)
            .where(*sharing_where(session, plan_id, LOCK_AT, CLOSE_ON))
        )
        for _ in range(2):
            scan, _ = timed(lambda: session.execute(count).scalar_one())
    directory = Path(tempfile.mkdtemp(prefix="bench_periods_"))
    target = directory / "collection.csv"
    with target.open("wb") as out:
        seconds, lines = timed(lambda: export_collection_file(ctx, PLAN, CLOSE_ON, out))
    size = target.stat().st_size
    line = b"1234567,470,xhb-main/2026-03-07:1234567\n"
    block = line * 10_000
    baseline_target = directory / "baseline.csv"
    with baseline_target.open("wb") as out:
        baseline, _ = timed(lambda: [out.write(block) for _ in range(lines // 10_000 + 1)])
    target.unlink()
    baseline_target.unlink()
    directory.rmdir()
    return {
        "lines": lines,
        "seconds": seconds,
        "lines_per_s": lines / seconds,
        "bytes": size,
        "baseline_count_scan_s": scan,
        "ratio_to_baseline": seconds / scan,
        "baseline_plain_write_s": baseline,
        "ratio_to_plain_write": seconds / baseline,
        "peak_rss_mb": peak_rss_mb(),
    }


def child_proof(url: str) -> dict[str, Any]:
    from mutualaid.services.periods.proofs import charge_proof, published_trust
    from mutualaid.services.transparency.checkpoints import LogConfig, publish_checkpoint
    from mutualaid.transparency.charge_proofs import verify_charge_proof
    from mutualaid.transparency.notes import generate_signer_key

    ctx = context(url)
    member = _statement_members(ctx, 1)[0]
    # The proof is anchored to a published checkpoint covering the period's commitment leaf.
    publish_checkpoint(ctx, LogConfig(generate_signer_key("bench.example/log")))
    timings = []
    proof = None
    for _ in range(20):
        seconds, proof = timed(lambda: charge_proof(ctx, SYSTEM_ACTOR, member, PLAN, CLOSE_ON))
        timings.append(seconds)
    assert proof is not None
    verify_charge_proof(proof, published_trust(ctx))
    with ctx.engine.connect() as connection:
        baseline, _ = timed(
            lambda: connection.execute(
                text("SELECT * FROM memberships WHERE id BETWEEN :a AND :b"),
                {"a": proof.block_index << 10, "b": (proof.block_index + 1) << 10},
            ).all()
        )
    median = statistics.median(timings[1:])
    return {
        "first_ms": timings[0] * 1000,
        "median_ms": median * 1000,
        "tree_size": proof.charges_tree_size,
        "block_members": len(proof.block),
        "baseline_block_read_ms": baseline * 1000,
        "ratio_to_baseline": median / baseline,
        "peak_rss_mb": peak_rss_mb(),
    }


CHILDREN = {
    "close": child_close,
    "statement": child_statement,
    "export": child_export,
    "proof": child_proof,
}


def run_child(name: str, url: str) -> dict[str, Any]:
    before = os.getloadavg()[0]
    done = subprocess.run(
        [sys.executable, __file__, "--child", name, "--url", url],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"{name} failed:\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    # The machine is shared: say how busy it was (1-minute load average, 2 CPUs).
    result["load_average_before_after"] = [round(before, 2), round(os.getloadavg()[0], 2)]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--url", help="Database URL (default: a file under /tmp, or bench_periods)")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="Keep the loaded database")
    parser.add_argument("--capped", action="store_true", help="Close with a binding annual cap")
    parser.add_argument("--memberships-only", action="store_true")
    parser.add_argument(
        "--rule",
        choices=[str(r) for r in SharingRule],
        default="uniform",
        help="The plan's sharing rule for the close",
    )
    parser.add_argument(
        "--scan-threads",
        type=int,
        default=None,
        help="Threads (connections) of the close's charges scan (default: MUTUALAID_SCAN_THREADS or 2)",
    )
    parser.add_argument("--only", nargs="*", choices=sorted(CHILDREN), default=None)
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    args = parser.parse_args()
    url = args.url or (f"sqlite:///{DEFAULT_SQLITE}" if args.db == "sqlite" else DEFAULT_POSTGRES)
    if args.scan_threads is not None:
        os.environ["MUTUALAID_SCAN_THREADS"] = str(args.scan_threads)
    if args.child:
        print(json.dumps(CHILDREN[args.child](url), default=str))
        return
    say(f"bench_periods: {args.db}, {args.members:,} members, {os.cpu_count()} CPUs")
    if not args.reuse:
        load(url, args.members, args.memberships_only)
    names = args.only or ["close", "statement", "export", "proof"]
    if "close" in names:
        reset(url, args.capped, args.rule)  # (the others measure the period a previous run closed)
    results: dict[str, Any] = {
        "db": args.db,
        "members": args.members,
        "capped": args.capped,
        "rule": args.rule,
    }
    for name in names:
        if args.memberships_only and name == "statement":
            continue  # a statement names its member: there are no persons to name
        results[name] = run_child(name, url)
        say(f"{name}: {json.dumps(results[name], default=str)}")
    say(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
