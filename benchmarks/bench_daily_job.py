"""The daily membership job (`advance_memberships`) on PostgreSQL, with and without its leaves.

Loads N memberships of which --changing percent have a waiting period that ended yesterday (1 %
of those also reach the exit age; the others wait on),
then runs the job alternately without and with its leaves (issue 14: `membership_events` batch
leaves, one per kind of change, effective day and 4,000 memberships, written by the UPDATE's own
statement), resetting the states in between, and prints seconds and the ratio. The switch is the benchmark-only MUTUALAID_BENCH_NO_MEMBERSHIP_LEAVES variable.

    python benchmarks/bench_daily_job.py --members 1000000 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from databases import BENCH_SECRET, PLAN_CODE, fresh_context, url_for
from sqlalchemy import text

from mutualaid.clock import FixedClock
from mutualaid.db.engines import make_engine, make_sessionmaker
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.memberships import NO_LEAVES_ENV, advance_memberships
from mutualaid.services.personal_data import PersonalDataProtector

OWN_URL = url_for("bench_daily_job")
TODAY = date(2026, 3, 1)
NOW = datetime(2026, 3, 1, 2, tzinfo=UTC)


def load(url: str, members: int, changing: float) -> None:
    ctx = fresh_context(url)
    joined_on = TODAY - timedelta(days=91)
    with ctx.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO accounts (phone, role, locale, created_at) "
                "VALUES ('13800000000', 'member', 'zh_CN', :now)"
            ),
            {"now": NOW},
        )
        connection.execute(
            text(
                """
                INSERT INTO persons (account_id, relation, identity_hash, identity_ciphertext,
                    name_ciphertext, name_masked, birth_on, sex, province_code, created_at)
                SELECT (SELECT id FROM accounts), 'child', md5(i::text) || md5((-i)::text),
                    '\\x00', '\\x00', '张*', DATE '1990-01-01', 'M', '33', :now
                FROM generate_series(1, :n) AS i"""
            ),
            {"n": members, "now": NOW},
        )
        connection.execute(
            text(
                """
                INSERT INTO memberships (plan_id, plan_version, person_id, payer_account_id, state,
                    joined_at, joined_on, waiting_ends_on, covered_from_on, ages_out_on)
                SELECT (SELECT id FROM plans WHERE code = :code), 1, p.id, p.account_id,
                    'waiting', :joined_at, :joined_on, :ends,
                    CASE WHEN p.id % 10000 < :changing THEN :covered ELSE DATE '2050-01-01' END,
                    CASE WHEN p.id % 10000 < :changing AND p.id % 100 = 0 THEN :today
                         ELSE DATE '2050-01-02' END
                FROM persons p"""
            ),
            {
                "code": PLAN_CODE,
                "joined_at": datetime(2025, 11, 30, 2, tzinfo=UTC),
                "joined_on": joined_on,
                "ends": TODAY - timedelta(days=1),
                "covered": TODAY,
                "today": TODAY,
                "changing": int(changing * 100),
            },
        )
        connection.execute(text("ANALYZE"))
    ctx.engine.dispose()


def reset(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE memberships SET state = 'waiting', ended_at = NULL, end_reason = NULL")
        )
        connection.execute(text("DELETE FROM log_entries"))
        connection.execute(text("DELETE FROM audit_events"))
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM ANALYZE memberships")
        )
    engine.dispose()


def run(url: str, leaves: bool) -> tuple[float, int, int]:
    if leaves:
        os.environ.pop(NO_LEAVES_ENV, None)
    else:
        os.environ[NO_LEAVES_ENV] = "1"
    engine = make_engine(url)
    ctx = ServiceContext(
        engine=engine,
        sessions=make_sessionmaker(engine),
        protector=PersonalDataProtector(BENCH_SECRET),
        clock=FixedClock(NOW),
    )
    started = time.perf_counter()
    result = advance_memberships(ctx, PLAN_CODE)
    elapsed = time.perf_counter() - started
    with engine.connect() as connection:
        written = connection.execute(text("SELECT count(*) FROM log_entries")).scalar_one()
    engine.dispose()
    os.environ.pop(NO_LEAVES_ENV, None)
    return elapsed, result.now_covered + result.aged_out, int(written)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=OWN_URL)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--changing", type=float, default=100.0, help="percent of members changing (default 100)"
    )
    args = parser.parse_args()
    print(
        f"load average {os.getloadavg()[0]:.1f}; loading {args.members:,} memberships, "
        f"{args.changing:g} % changing",
        flush=True,
    )
    load(args.database_url, args.members, args.changing)
    print("| round | leaves | seconds | memberships changed | leaves written |")
    print("|---:|---|---:|---:|---:|")
    times: dict[bool, list[float]] = {False: [], True: []}
    for round_no in range(1, args.rounds + 1):
        for leaves in (False, True):
            reset(args.database_url)
            elapsed, changed, written = run(args.database_url, leaves)
            times[leaves].append(elapsed)
            state = "on" if leaves else "off"
            print(
                f"| {round_no} | {state} | {elapsed:.2f} | {changed:,} | {written:,} |", flush=True
            )
    best_off, best_on = min(times[False]), min(times[True])
    print(
        f"best without leaves {best_off:.2f} s, with {best_on:.2f} s: ratio {best_on / best_off:.2f}"
    )


if __name__ == "__main__":
    main()
