"""Operator reports at scale: each section of `plan_report` over a plan of N members.

Loads the periods benchmark's plan (`bench_periods.load`: N memberships from 2022 to March 2026 with
persons, leavers, suspensions and 75 periods), adds four years of decided claims (N × 7×10⁻⁴ a year)
with their publicity and jury events, objections and investigation reports, all with set-based
SQL; then times every section of the report, and a bare ``SELECT count(*) FROM memberships`` (one
full scan) as the baseline.

    python benchmarks/bench_reports.py --db sqlite --members 1000000
    python benchmarks/bench_reports.py --db postgresql --url postgresql://…/db --members 1000000
    python benchmarks/bench_reports.py --db sqlite --reuse      # keep the loaded database
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from datetime import date
from typing import Any

import bench_periods
from sqlalchemy import text

from mutualaid.clock import FixedClock
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.reports.reports import Section, plan_report

NOW = bench_periods.CLOSE_CLOCK
DAYS = 4 * 365


def add_claims(url: str, members: int) -> int:
    """Decided claims spread over four years, with events, objections and investigation reports."""
    ctx = bench_periods.context(url)
    count = max(10, round(members * 7e-4 * 4))
    step = max(1, members // count)
    dialect = ctx.engine.dialect.name
    series = (
        "WITH RECURSIVE s(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM s WHERE j + 1 < :n) "
        if dialect == "sqlite"
        else ""
    )
    source = "FROM s" if dialect == "sqlite" else "FROM generate_series(0, :n - 1) AS s(j)"
    reported = bench_periods._ts(dialect, f"j * {DAYS * 86_400 // count} + 3600")
    decided = bench_periods._ts(
        dialect, f"j * {DAYS * 86_400 // count} + 3600 + (j % 40) * 86400 + (j % 24) * 3600"
    )
    with ctx.engine.begin() as connection:
        plan_id = connection.execute(
            text("SELECT id FROM plans WHERE code = 'xhb-main'")
        ).scalar_one()
        connection.execute(text("DELETE FROM claims WHERE ref LIKE 'rep-%'"))
        connection.execute(
            text(f"""{series}
            INSERT INTO claims (ref, plan_id, plan_version, membership_id, person_id,
                claimant_account_id, illness_code, tier, accident, diagnosed_on, hospital,
                age_at_diagnosis, payout_fen, state, reported_at, reported_on, decided_at,
                sponsored, updated_at)
            SELECT 'rep-' || j, :plan, 1, m.id, m.person_id, m.payer_account_id,
                CASE WHEN j % 7 = 0 THEN 'CI02' ELSE 'CI01' END, 'severe', false,
                {bench_periods._day(dialect, reported)}, '医院', 20 + j % 40, 30000000,
                CASE WHEN j % 9 = 0 THEN 'rejected' ELSE 'paid' END, {reported},
                {bench_periods._day(dialect, reported)}, {decided}, false, {decided}
            {source} JOIN memberships m ON m.id = 7 + j * :step"""),
            {"n": count, "plan": plan_id, "step": step},
        )
        connection.execute(
            text("""
            INSERT INTO claim_events (claim_id, at, event, from_state, to_state)
            SELECT id, decided_at, 'publish', 'approval_proposed', 'in_publicity' FROM claims
            WHERE ref LIKE 'rep-%' AND state = 'paid'""")
        )
        connection.execute(
            text("""
            INSERT INTO claim_events (claim_id, at, event, from_state, to_state)
            SELECT id, decided_at, 'dispute', 'rejected', 'jury_voting' FROM claims
            WHERE ref LIKE 'rep-%' AND state = 'rejected'""")
        )
        connection.execute(
            text("""
            INSERT INTO claim_events (claim_id, at, event, from_state, to_state)
            SELECT id, decided_at, CASE WHEN id % 2 = 0 THEN 'jury_approves' ELSE 'jury_rejects' END,
                   'jury_voting', 'approved' FROM claims WHERE ref LIKE 'rep-%' AND state = 'rejected'""")
        )
        connection.execute(
            text("""
            INSERT INTO objections (claim_id, objector_account_id, reason, state, filed_at)
            SELECT id, claimant_account_id, 'why', CASE WHEN id % 3 = 0 THEN 'upheld' ELSE 'dismissed' END, decided_at
            FROM claims WHERE ref LIKE 'rep-%' AND id % 5 = 0""")
        )
        connection.execute(
            text("""
            INSERT INTO investigation_reports (claim_id, investigator_id, findings, recommendation,
                cost_fen, filed_at)
            SELECT id, claimant_account_id, 'ok', 'approve', 20000 + id % 5000, decided_at FROM claims
            WHERE ref LIKE 'rep-%'""")
        )
    ctx.engine.dispose()
    return count


def measure(url: str) -> dict[str, Any]:
    ctx = bench_periods.context(url, FixedClock(NOW))
    results: dict[str, Any] = {}
    with ctx.engine.connect() as connection:
        began = time.perf_counter()
        connection.execute(text("SELECT count(*) FROM memberships")).scalar_one()
        results["baseline: count(*) memberships"] = round(time.perf_counter() - began, 3)
    for section in Section:
        began = time.perf_counter()
        plan_report(ctx, SYSTEM_ACTOR, "xhb-main", to_on=date(2026, 3, 6), sections=[section])
        results[str(section)] = round(time.perf_counter() - began, 3)
    began = time.perf_counter()
    report = plan_report(ctx, SYSTEM_ACTOR, "xhb-main", to_on=date(2026, 3, 6))
    results["whole report"] = round(time.perf_counter() - began, 3)
    results["membership months"] = len(report.membership or [])
    results["active at end"] = report.membership[-1].active_at_end if report.membership else 0
    results["peak RSS MB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    ctx.engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--url", help="Database URL (default: the periods benchmark's)")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="Keep the loaded database")
    args = parser.parse_args()
    url = args.url or (
        f"sqlite:///{bench_periods.DEFAULT_SQLITE}"
        if args.db == "sqlite"
        else bench_periods.DEFAULT_POSTGRES
    )
    if not args.reuse:
        began = time.perf_counter()
        bench_periods.load(url, args.members, memberships_only=False)
        claims = add_claims(url, args.members)
        print(
            f"loaded {args.members:,} members and {claims:,} decided claims in "
            f"{time.perf_counter() - began:,.0f} s",
            flush=True,
        )
    print(json.dumps(measure(url), indent=2))


if __name__ == "__main__":
    main()
