"""Issue 16: `mutualaid keys rotate` over 100k members, on SQLite and PostgreSQL.

Imports N members under key version 1 (the set-based import), then with the ring {1, 2}: a
rotation killed after half its batches, a look-up by identity number of a person under each
version while half-rotated, the rest of the rotation, and a look-up once done.

    PYTHONPATH=src python benchmarks/bench_key_rotation.py --members 100000 --database sqlite
    PYTHONPATH=src python benchmarks/bench_key_rotation.py --members 100000 --database postgresql
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import io
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from mutualaid.db.engines import make_engine
from mutualaid.db.models import Person
from mutualaid.db.queries.memberships import joining_facts
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.context import ServiceContext
from mutualaid.services.demo_data import random_member_rows
from mutualaid.services.enrollment.member_imports import import_members
from mutualaid.services.keys.rotation import rotate_personal_data
from mutualaid.services.personal_data import PersonalDataProtector

sys.path.insert(0, str(Path(__file__).resolve().parent))
from databases import BENCH_SECRET, PLAN_CODE, fresh_context, plan_context, url_for

NEW_SECRET = "rotated-Kd8sPq3Lm7Vx2Nw9Rt4Yb6Hj1Fg5Cz0Ua"
TODAY = date(2026, 3, 1)


class Stop(Exception):
    pass


def found(ctx: ServiceContext, number: str) -> float:
    """Seconds for the join's look-up of one identity number (under every live version)."""
    start = time.perf_counter()
    with ctx.engine.connect() as connection:
        facts = joining_facts(
            connection, PLAN_CODE, ctx.protector.identity_hashes(number), account_id=1
        )
    assert facts is not None and facts.known_person_id is not None, number
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.database == "sqlite":
            ctx = plan_context(make_engine(f"sqlite:///{Path(folder) / 'bench.db'}"))
        else:
            ctx = fresh_context(url_for("bench_keys"))
        rows = random_member_rows(args.members, TODAY)
        text = io.StringIO()
        writer = csv.DictWriter(text, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        text.seek(0)
        start = time.perf_counter()
        report = import_members(ctx, SYSTEM_ACTOR, PLAN_CODE, text, io.StringIO(), workers=2)
        print(f"import: {report.imported:,} members in {time.perf_counter() - start:.1f} s")

        ring = PersonalDataProtector({1: BENCH_SECRET, 2: NEW_SECRET})
        rotating = dataclasses.replace(ctx, protector=ring)
        half = report.imported // args.batch // 2
        batches = 0

        def stop_half_way(_: int) -> None:
            nonlocal batches
            batches += 1
            if batches == half:
                raise Stop

        start = time.perf_counter()
        with contextlib.suppress(Stop):
            rotate_personal_data(rotating, batch_rows=args.batch, progress=stop_half_way)
        first_s = time.perf_counter() - start
        first, last = rows[0]["id_number"], rows[-1]["id_number"]
        print(
            f"half-rotated ({half} batches of {args.batch}) in {first_s:.1f} s; look-up under "
            f"v2 {found(rotating, first) * 1000:.1f} ms, under v1 "
            f"{found(rotating, last) * 1000:.1f} ms"
        )
        start = time.perf_counter()
        moved = rotate_personal_data(rotating, batch_rows=args.batch)
        rest_s = time.perf_counter() - start
        with ctx.reading() as session:
            counts = dict(
                session.execute(
                    select(Person.key_version, func.count()).group_by(Person.key_version)
                ).all()
            )
        total = first_s + rest_s
        done = dataclasses.replace(ctx, protector=PersonalDataProtector({2: NEW_SECRET}))
        print(
            f"resumed: {moved:,} more in {rest_s:.1f} s; total {total:.1f} s "
            f"({report.imported / total:,.0f} persons/s); per version {counts}; look-up after "
            f"{found(done, first) * 1000:.1f} ms"
        )
        ctx.engine.dispose()


if __name__ == "__main__":
    main()
