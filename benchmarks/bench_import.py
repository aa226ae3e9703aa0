"""CSV member import on PostgreSQL: rows/s against a fair baseline and a bare COPY, and peak memory.

For each size given with --rows: writes a CSV of valid members, resets the database, runs the
bare baseline (COPY of the file's rows into a plain five-column table, in the same run), then the
real import (services.member_imports.import_members, the code behind `mutualaid members import`),
and samples the resident memory of this process plus its validation worker processes every 50 ms.
Then the fair baseline (issue 20): the rows the import wrote (accounts, persons, memberships and
their join leaves, already validated, hashed and encrypted) are copied out, the database is reset,
and they are COPYed back into the real tables, with their indexes and keys, in one transaction.

    python benchmarks/bench_import.py                          # 1M rows
    python benchmarks/bench_import.py --rows 1000000 10000000  # memory flat as the file grows?

Figures go to benchmarks/RESULTS.md with the command that made them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import resource
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from databases import PLAN_CODE, fresh_context, url_for

from mutualaid.domain.calendars import local_date
from mutualaid.domain.identities import PROVINCES, check_character, parse_resident_id
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.enrollment.member_imports import DEFAULT_CHUNK_ROWS, import_members
from mutualaid.services.plans.plans import plan_rules

#: Its own database, so it can run while another benchmark uses `bench`.
OWN_URL = url_for("bench_import")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国志红玉春晓燕鹏辉飞云"


def _weighted(digits: str, first_position: int) -> int:
    return sum(int(d) * _WEIGHTS[first_position + i] for i, d in enumerate(digits))


def write_member_csv(path: Path, rows: int, today: date, seed: int = 2018) -> None:
    """Stream `rows` valid members (unique ID numbers, families of 1-3 sharing a phone) to `path`.

    An ID number is province(2) + "0101" + birth date(8) + order(3) + check character; the check
    character is linear in the digits, so it is assembled from precomputed weighted sums of the
    three parts (checked against mutualaid's own check_character below). Row i gets the i-th
    element of a fixed permutation of (province, birth date, order), so every number is unique.
    """
    rng = random.Random(seed)
    provinces = sorted(code for code in PROVINCES if code < "70")
    oldest = today.replace(year=today.year - 58) + timedelta(days=1)
    youngest = today.replace(year=today.year - 2)
    births = [oldest + timedelta(days=d) for d in range((youngest - oldest).days + 1)]
    prefix = [p + "0101" for p in provinces]
    prefix_sum = [_weighted(p, 0) for p in prefix]
    birth_text = [b.strftime("%Y%m%d") for b in births]
    birth_sum = [_weighted(b, 6) for b in birth_text]
    order_text = [f"{o:03d}" for o in range(1000)]
    order_sum = [_weighted(o, 14) for o in order_text]
    space = len(provinces) * len(births) * 1000
    if rows > space:
        raise SystemExit(f"at most {space:,} unique ID numbers")
    step = 1_000_003  # prime, and larger than any factor of `space`: i -> i*step mod space is 1:1
    offset = rng.randrange(space)
    joined = [(today - timedelta(days=d)).isoformat() for d in range(0, 361)]
    names = [
        rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=rng.choice((1, 2))))
        for _ in range(4096)
    ]
    relations = ("self", "spouse", "child")
    n_births = len(births)

    def id_number(i: int) -> str:
        k = (i * step + offset) % space
        k, order = divmod(k, 1000)
        province, birth = divmod(k, n_births)
        check = _CHECK[(prefix_sum[province] + birth_sum[birth] + order_sum[order]) % 11]
        return prefix[province] + birth_text[birth] + order_text[order] + check

    for i in range(0, rows, max(1, rows // 97)):  # our arithmetic agrees with the domain's
        number = id_number(i)
        assert check_character(number[:17]) == number[17], number
        parse_resident_id(number)

    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("payer_phone,full_name,id_number,relation,joined_on\n")
        i = 0
        family = 0
        lines: list[str] = []
        randbits = rng.getrandbits
        while i < rows:
            family += 1
            phone = f"139{family:08d}"
            size = (1, 1, 2, 3)[randbits(2)]
            day = joined[randbits(16) % 361]
            for position in range(min(size, rows - i)):
                lines.append(
                    f"{phone},{names[randbits(12)]},{id_number(i)},{relations[position]},{day}\n"
                )
                i += 1
            if len(lines) >= 20_000:
                out.write("".join(lines))
                lines.clear()
        out.write("".join(lines))


class MemorySampler:
    """Peak resident memory of this process plus its children, sampled in a thread.

    Listing children scans every process on the machine, so it is done once a second; the
    resident size of the known processes is read every `interval` seconds.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.peak_total = 0
        self.peak_children = 0
        self.peak_self = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        children: list[psutil.Process] = []
        listed_at = 0.0
        while not self._stop.is_set():
            if time.monotonic() - listed_at > 1.0:
                children = self._process.children(recursive=True)
                listed_at = time.monotonic()
            own = self._process.memory_info().rss
            in_children = 0
            for child in children:
                with contextlib.suppress(psutil.Error):
                    in_children += child.memory_info().rss
            self.peak_self = max(self.peak_self, own)
            self.peak_children = max(self.peak_children, in_children)
            self.peak_total = max(self.peak_total, own + in_children)
            self._stop.wait(self._interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def postgres_cpu(engine: Any) -> dict[str, float]:
    """CPU seconds so far of this database's backends and of PostgreSQL's background writers."""
    with engine.connect() as connection:
        pids = (
            connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            )
            .scalars()
            .all()
        )
    seconds: dict[str, float] = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        seconds[f"backend {pid}"] = times.user + times.system
    for process in psutil.process_iter(["cmdline"]):
        name = " ".join(process.info["cmdline"] or [])
        if name.startswith("postgres: ") and any(
            role in name for role in ("walwriter", "checkpointer", "background writer")
        ):
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            seconds[name.split(":")[-1].strip()] = times.user + times.system
    return seconds


def cpu_delta(before: dict[str, float], after: dict[str, float], backends: bool) -> float:
    return sum(
        value - before.get(key, 0.0)
        for key, value in after.items()
        if key.startswith("backend ") == backends
    )


@dataclass
class SizeResult:
    rows: int
    csv_mb: float
    generate_s: float
    copy_s: float
    import_s: float
    imported: int
    rejected: int
    rss_before_mb: float
    peak_self_mb: float
    peak_children_mb: float
    peak_total_mb: float
    cpu_main_s: float
    cpu_workers_s: float
    cpu_backend_s: float
    cpu_pg_background_s: float
    fair_s: float
    fair_backend_s: float

    @property
    def copy_rate(self) -> float:
        return self.rows / self.copy_s

    @property
    def import_rate(self) -> float:
        return self.rows / self.import_s

    @property
    def fair_rate(self) -> float:
        return self.rows / self.fair_s


def copy_baseline(url: str, path: Path) -> float:
    """Seconds to COPY the file's rows (CSV, as they are) into a plain table and commit."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as connection:
        connection.execute("DROP TABLE IF EXISTS copy_baseline")
        connection.execute(
            "CREATE TABLE copy_baseline (payer_phone TEXT, full_name TEXT, "
            "id_number TEXT, relation TEXT, joined_on DATE)"
        )
        connection.commit()
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,
            path.open("rb") as source,
            cursor.copy("COPY copy_baseline FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
        ):
            while block := source.read(1 << 20):
                copy.write(block)
        connection.commit()
        elapsed = time.perf_counter() - started
        copied = connection.execute("SELECT count(*) FROM copy_baseline").fetchone()
        assert copied is not None and copied[0] > 0
        connection.execute("DROP TABLE copy_baseline")
        connection.commit()
    return elapsed


#: What the import writes per member, in the order a COPY must load it (keys before references).
_IMPORTED = (
    ("accounts", "SELECT * FROM accounts WHERE role = 'member'"),
    ("persons", "SELECT * FROM persons"),
    ("memberships", "SELECT * FROM memberships"),
    ("log_entries", "SELECT * FROM log_entries WHERE subject_type = 'membership'"),
)


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def export_imported(url: str, workdir: Path) -> list[Path]:
    """The import's rows, as binary COPY files (one per table)."""
    import psycopg

    paths = []
    with psycopg.connect(_psycopg_url(url)) as connection, connection.cursor() as cursor:
        for table, query in _IMPORTED:
            path = workdir / f"fair-{table}.copy"
            with (
                path.open("wb") as out,
                cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT binary)") as copy,
            ):
                for block in copy:
                    out.write(block)
            paths.append(path)
    return paths


def fair_baseline(url: str, paths: list[Path]) -> tuple[float, float]:
    """Seconds (and backend CPU seconds) to COPY the import's own rows into the real tables of a
    fresh database, with every index and foreign key in place, and commit."""
    import psycopg

    ctx = fresh_context(url)  # same schema, plans and ids as the database the import wrote into
    with ctx.engine.begin() as connection:
        connection.execute(text("CHECKPOINT"))
    with psycopg.connect(_psycopg_url(url)) as connection:
        backend = psutil.Process(connection.info.backend_pid)
        cpu_before = sum(backend.cpu_times()[:2])
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for (table, _), path in zip(_IMPORTED, paths, strict=True):
                with (
                    path.open("rb") as source,
                    cursor.copy(f"COPY {table} FROM STDIN (FORMAT binary)") as copy,
                ):
                    while block := source.read(1 << 20):
                        copy.write(block)
        connection.commit()
        elapsed = time.perf_counter() - started
        cpu = sum(backend.cpu_times()[:2]) - cpu_before
    ctx.engine.dispose()
    for path in paths:
        path.unlink()
    return elapsed, cpu


def run_size(
    url: str, rows: int, workdir: Path, workers: int, chunk_rows: int, keep_csv: bool
) -> SizeResult:
    ctx = fresh_context(url)
    # The plan's zone decides "today" for the import; generate join dates up to that day.
    today = local_date(ctx.clock.now(), plan_rules(ctx, PLAN_CODE)[1].zone)
    path = workdir / f"members-{rows}.csv"
    started = time.perf_counter()
    write_member_csv(path, rows, today)
    generate_s = time.perf_counter() - started
    csv_mb = path.stat().st_size / 1e6
    print(f"  {rows:,} rows: CSV {csv_mb:,.0f} MB written in {generate_s:.1f} s", flush=True)

    copy_s = copy_baseline(url, path)
    print(f"  baseline COPY: {copy_s:.1f} s, {rows / copy_s:,.0f} rows/s", flush=True)
    with ctx.engine.begin() as connection:  # the baseline's dead rows are not the import's problem
        connection.execute(text("CHECKPOINT"))

    rss_before = psutil.Process().memory_info().rss
    errors_path = workdir / f"members-{rows}.errors.csv"
    pg_before = postgres_cpu(ctx.engine)
    own_before = psutil.Process().cpu_times()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with (
        MemorySampler() as memory,
        path.open(newline="", encoding="utf-8-sig") as source,
        errors_path.open("w", newline="", encoding="utf-8") as errors_out,
    ):
        started = time.perf_counter()
        report = import_members(
            ctx, SYSTEM_ACTOR, PLAN_CODE, source, errors_out, chunk_rows=chunk_rows, workers=workers
        )
        import_s = time.perf_counter() - started
    own_after = psutil.Process().cpu_times()
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    pg_after = postgres_cpu(ctx.engine)
    cpu_main = own_after.user + own_after.system - own_before.user - own_before.system
    cpu_workers = (
        children_after.ru_utime
        + children_after.ru_stime
        - children_before.ru_utime
        - children_before.ru_stime
    )
    print(
        f"  import: {import_s:.1f} s, {rows / import_s:,.0f} rows/s, "
        f"{report.imported:,} imported, {report.rejected:,} refused",
        flush=True,
    )

    with ctx.reading() as session:
        members = session.execute(text("SELECT count(*) FROM memberships")).scalar_one()
        persons = session.execute(text("SELECT count(*) FROM persons")).scalar_one()
    if not (
        report.rows_read == rows
        and report.imported == rows == members == persons
        and report.rejected == 0
    ):
        raise SystemExit(f"import check failed: {report}, memberships={members}, persons={persons}")
    ctx.engine.dispose()
    fair_s, fair_backend_s = fair_baseline(url, export_imported(url, workdir))
    print(
        f"  fair baseline (COPY of the imported rows into the real tables): {fair_s:.1f} s, "
        f"{rows / fair_s:,.0f} rows/s; import / fair = {fair_s / import_s:.2f}",
        flush=True,
    )
    if not keep_csv:
        path.unlink()
        errors_path.unlink()
    mb = 1 / 2**20
    return SizeResult(
        rows,
        csv_mb,
        generate_s,
        copy_s,
        import_s,
        report.imported,
        report.rejected,
        rss_before * mb,
        memory.peak_self * mb,
        memory.peak_children * mb,
        memory.peak_total * mb,
        cpu_main,
        cpu_workers,
        cpu_delta(pg_before, pg_after, True),
        cpu_delta(pg_before, pg_after, False),
        fair_s,
        fair_backend_s,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", OWN_URL),
        help=f"PostgreSQL database to drop and refill (default {OWN_URL})",
    )
    parser.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=[1_000_000],
        help="file sizes to import, each into a fresh database (default 1000000)",
    )
    parser.add_argument("--workers", type=int, default=1, help="validation worker processes")
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the CSV goes (default: tmp)"
    )
    parser.add_argument("--keep-csv", action="store_true")
    args = parser.parse_args()

    print(
        f"machine: {psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}; "
        f"PostgreSQL on the same machine; workers={args.workers} chunk_rows={args.chunk_rows}",
        flush=True,
    )
    results: list[SizeResult] = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        for rows in args.rows:
            results.append(
                run_size(
                    args.database_url,
                    rows,
                    Path(scratch),
                    args.workers,
                    args.chunk_rows,
                    args.keep_csv,
                )
            )

    print()
    print(
        "| rows | import rows/s | fair baseline rows/s | import / fair | bare COPY rows/s | "
        "import / bare COPY | import s | peak RSS total MB (main + workers) | RSS before import MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.rows:,} | {r.import_rate:,.0f} | {r.fair_rate:,.0f} | "
            f"{r.import_rate / r.fair_rate:.2f} | {r.copy_rate:,.0f} | "
            f"{r.import_rate / r.copy_rate:.3f} | {r.import_s:.1f} | "
            f"{r.peak_total_mb:,.0f} ({r.peak_self_mb:,.0f} + {r.peak_children_mb:,.0f}) | "
            f"{r.rss_before_mb:,.0f} |"
        )
    print()
    print(
        "CPU per imported row (µs): | rows | parent | validation workers | PostgreSQL backend "
        "| PostgreSQL WAL/checkpoint/bgwriter | total |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for r in results:
        per = [
            v / r.rows * 1e6
            for v in (r.cpu_main_s, r.cpu_workers_s, r.cpu_backend_s, r.cpu_pg_background_s)
        ]
        print(f"| {r.rows:,} | " + " | ".join(f"{v:.1f}" for v in per) + f" | {sum(per):.1f} |")
    print()
    print("Fair baseline CPU per row (µs), PostgreSQL backend:")
    for r in results:
        print(f"| {r.rows:,} | {r.fair_backend_s / r.rows * 1e6:.1f} |")
    if len(results) > 1:
        small, large = results[0], results[-1]
        print(
            f"\nmemory growth {small.rows:,} -> {large.rows:,} rows "
            f"({large.rows / small.rows:.0f}x the file): peak RSS x"
            f"{large.peak_total_mb / small.peak_total_mb:.2f}"
        )
    print(f"load average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    worst = min(r.import_rate / r.fair_rate for r in results)
    print(
        f"issue 20 target import / fair baseline >= 0.5: {'met' if worst >= 0.5 else 'NOT met'} "
        f"(worst {worst:.2f})"
    )
    target = 100_000
    best = max(r.import_rate for r in results)
    print(
        f"target >= {target:,} rows/s: {'met' if best >= target else 'NOT met'} "
        f"(best {best:,.0f} rows/s)"
    )


if __name__ == "__main__":
    main()
