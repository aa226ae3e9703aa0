"""The end of a plan at scale: announce (every payer notified), end cover (every membership ended,
every prepaid balance refunded and sum-checked) and the streamed migration export.

Loads N members with `bench_periods.load` (families, leavers, suspended members, 75 paid periods),
gives every account a prepaid balance (and the ledger its total), then times each step in this
process; the export's peak Python memory is measured with tracemalloc.

    python benchmarks/bench_wind_down.py --db sqlite --members 1000000
    python benchmarks/bench_wind_down.py --db postgresql --members 1000000 --url postgresql://…
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from benchmarks.bench_periods import DEFAULT_POSTGRES, PLAN, context, load
from sqlalchemy import text

from mutualaid.clock import FixedClock
from mutualaid.domain.ledger import PROVIDER, Leg, plan_account, transaction
from mutualaid.plan_files import read_plan_file
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.ledger.ledger import post
from mutualaid.services.plans.plans import publish_plan
from mutualaid.services.wind_down.exports import migration_export
from mutualaid.services.wind_down.wind_down import announce_end, end_cover

DEFAULT_SQLITE = Path("/tmp/bench_wind_down/wind_down.db")


def prepaid(url: str) -> int:
    """A prepaid plan version, a balance for every account, and their sum in the ledger."""
    clock = FixedClock(datetime(2026, 3, 1, 2, tzinfo=UTC))
    ctx = context(url, clock)
    publish_plan(
        ctx,
        None,
        read_plan_file(f"{PLAN}.toml").replace(
            'funding_model = "post_paid"', 'funding_model = "prepaid"'
        ),
    )
    with ctx.sessions.begin() as session:
        plan_id = session.execute(
            text("SELECT id FROM plans WHERE code = :c"), {"c": PLAN}
        ).scalar_one()
        session.execute(
            text(
                "INSERT INTO prepaid_balances (plan_id, payer_account_id, balance_fen, updated_at) "
                "SELECT :p, id, 1000 + id % 997, :at FROM accounts"
            ),
            {"p": plan_id, "at": clock.now()},
        )
        total = int(
            session.execute(text("SELECT sum(balance_fen) FROM prepaid_balances")).scalar_one()
        )
        post(
            session,
            transaction(
                "bench:top_ups",
                "top_up",
                [Leg(PROVIDER, -total), Leg(plan_account(PLAN, "prepaid"), total)],
            ),
            at=clock.now(),
        )
    ctx.engine.dispose()
    return total


def timed(action: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--members", type=int, default=200_000)
    parser.add_argument("--url", help="PostgreSQL database to (re)create (default: bench_periods')")
    args = parser.parse_args()
    url = f"sqlite:///{DEFAULT_SQLITE}" if args.db == "sqlite" else args.url or DEFAULT_POSTGRES
    if args.db == "sqlite":
        DEFAULT_SQLITE.parent.mkdir(parents=True, exist_ok=True)
    load(url, args.members, memberships_only=False)
    total = prepaid(url)
    clock = FixedClock(datetime(2026, 3, 1, 2, tzinfo=UTC))
    ctx = context(url, clock)
    results: dict[str, Any] = {"db": args.db, "members": args.members, "prepaid_total_fen": total}
    results["announce_s"], _ = timed(
        lambda: announce_end(ctx, SYSTEM_ACTOR, PLAN, date(2026, 3, 5), "benchmark")
    )
    clock.set(datetime(2026, 3, 5, 2, tzinfo=UTC))
    results["end_cover_s"], view = timed(lambda: end_cover(ctx, SYSTEM_ACTOR, PLAN))
    results["memberships_ended"], results["refunds"] = view.memberships_ended, view.refunds
    assert view.refunded_fen == total, (view.refunded_fen, total)
    lines = 0

    def export() -> None:
        nonlocal lines
        lines = 0
        for chunk in migration_export(ctx, SYSTEM_ACTOR, PLAN):
            lines += chunk.count("\n")

    results["export_s"], _ = timed(export)
    # Again, traced (tracemalloc slows Python down many times: not timed).
    tracemalloc.start()
    export()
    results["export_peak_python_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    tracemalloc.stop()
    results["export_lines"] = lines - 1
    print(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
