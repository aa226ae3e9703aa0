"""API joins per second on PostgreSQL, against a minimal FastAPI insert endpoint in the same run.

1. Resets the database, publishes the demo plan and creates member accounts with bearer tokens
   directly in SQL (so argon2 is not part of what is measured).
2. Starts the real server, `mutualaid serve --workers W`, and drives
   POST /api/v1/plans/xhb-main/memberships from C concurrent keep-alive connections for D seconds
   (each request a new person with a valid ID number, relation self, every health answer "no",
   its own Idempotency-Key).
3. Starts the baseline: a minimal FastAPI app (below) under uvicorn with the same worker count and
   the same engine settings, whose one endpoint takes the same JSON body and inserts one row through
   SQLAlchemy; drives it the same way.
4. Prints joins/s, baseline inserts/s, the ratio and p50/p99 latencies, and checks that the number
   of memberships equals the number of 201 answers.

The load generator is a few lines of asyncio speaking HTTP/1.1 (far cheaper per request than an HTTP
client library), but it runs on the same 2 cores as the servers and PostgreSQL: every figure here
includes that competition. Loopback only.

    python benchmarks/bench_joins.py                        # defaults: 2 workers, 16 connections
    python benchmarks/bench_joins.py --duration 30 --workers 4 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil
from databases import PLAN_CODE, fresh_context, server_env, url_for
from fastapi import FastAPI, Header, status
from pydantic import BaseModel, Field
from sqlalchemy import BigInteger, Column, DateTime, MetaData, String, Table, insert

from mutualaid.db.engines import make_engine
from mutualaid.domain.identities import PROVINCES, Sex, make_resident_id
from mutualaid.domain.plans import parse_plan_toml, rules_fingerprint
from mutualaid.plan_files import read_plan_file

HERE = Path(__file__).resolve().parent
#: Its own database, so it can run while another benchmark uses `bench`.
OWN_URL = url_for("bench_joins")

HEALTH_ANSWERS = {
    "long_medication": False,
    "long_hospital_stay": False,
    "tumour": False,
    "heart_disease": False,
    "diabetes": False,
}
JOIN_PATH = f"/api/v1/plans/{PLAN_CODE}/memberships"
#: The rules every joining member agrees to: the demo plan's, as `databases` publishes it.
RULES_SHA256 = rules_fingerprint(parse_plan_toml(read_plan_file(f"{PLAN_CODE}.toml")))
#: Connections open this far apart (within the warm-up). Opened all at once, they would all be
#: accepted by whichever worker woke first (asyncio accepts a whole backlog in one go), leaving
#: the other workers idle; clients that arrive over time spread across the workers, as phones do.
CONNECT_GAP_S = 0.05
BASELINE_PATH = "/baseline/rows"


# --- the baseline application (imported by uvicorn in its worker processes) -------------------


class BaselineBody(BaseModel):
    """The same JSON body as a join (validated the same way by pydantic)."""

    full_name: str = Field(min_length=1, max_length=50)
    id_number: str = Field(min_length=1, max_length=30)
    relation: str = "self"
    health_answers: dict[str, bool] = Field(default_factory=dict)
    rules_sha256: str | None = Field(default=None, max_length=64)


def baseline_app() -> FastAPI:
    """A minimal FastAPI app: one endpoint, same body shape, inserts one row, answers 201."""
    engine = make_engine(os.environ["MUTUALAID_DATABASE_URL"])
    rows = Table(
        "baseline_rows",
        MetaData(),
        Column("id", BigInteger, primary_key=True),
        Column("full_name", String(50)),
        Column("id_number", String(30)),
        Column("idempotency_key", String(200)),
        Column("created_at", DateTime(timezone=True)),
    )

    app = FastAPI()

    @app.post(BASELINE_PATH, status_code=status.HTTP_201_CREATED)
    def add_row(
        body: BaselineBody, key: str | None = Header(default=None, alias="Idempotency-Key")
    ) -> dict[str, int]:
        with engine.begin() as connection:
            new_id = connection.execute(
                insert(rows)
                .values(
                    full_name=body.full_name,
                    id_number=body.id_number,
                    idempotency_key=key,
                    created_at=datetime.now(UTC),
                )
                .returning(rows.c.id)
            ).scalar_one()
        return {"id": new_id}

    return app


# --- set-up -----------------------------------------------------------------------------------


def create_members(url: str, count: int) -> list[str]:
    """`count` member accounts, each with a bearer token (stored as its SHA-256, as the app does)."""
    ctx = fresh_context(url)
    now = datetime.now(UTC)
    tokens = [secrets.token_urlsafe(32) for _ in range(count)]
    raw = ctx.engine.raw_connection()
    try:
        cursor = raw.cursor()
        with cursor.copy("COPY accounts (phone, role, locale, created_at) FROM STDIN") as copy:
            for i in range(count):
                copy.write_row((f"138{i:08d}", "member", "zh_CN", now))
        cursor.execute("SELECT id FROM accounts WHERE phone LIKE '138%%' ORDER BY phone")
        ids = [row[0] for row in cursor.fetchall()]
        with cursor.copy(
            "COPY api_tokens (token_hash, account_id, created_at, expires_at) FROM STDIN"
        ) as copy:
            for account_id, token in zip(ids, tokens, strict=True):
                copy.write_row(
                    (
                        hashlib.sha256(token.encode()).hexdigest(),
                        account_id,
                        now,
                        now + timedelta(days=1),
                    )
                )
        cursor.execute(
            "CREATE TABLE baseline_rows (id BIGSERIAL PRIMARY KEY, full_name VARCHAR(50),"
            " id_number VARCHAR(30), idempotency_key VARCHAR(200),"
            " created_at TIMESTAMP WITH TIME ZONE)"
        )
        cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    ctx.engine.dispose()
    return tokens


def resident_ids(count: int, today: date) -> list[str]:
    """`count` distinct valid ID numbers of adults (18-58), built with the domain's own function."""
    provinces = sorted(code for code in PROVINCES if code < "70")
    first = today.replace(year=today.year - 58) + timedelta(days=1)
    days = (today.replace(year=today.year - 18) - first).days
    numbers = []
    for i in range(count):
        sequence, rest = i % 500, i // 500
        sex, rest = (Sex.MALE, Sex.FEMALE)[rest % 2], rest // 2
        day, province = rest % days, rest // days
        numbers.append(
            make_resident_id(provinces[province], first + timedelta(days=day), sequence, sex)
        )
    return numbers


def baseline_server_command(port: int, workers: int) -> list[str]:
    """The baseline's server: `baseline_app` under uvicorn with `workers` processes."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(HERE),
        "bench_joins:baseline_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    # A loaded shared machine can take over a minute to import the app in every worker.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(
                f"server exited: {process.stderr.read().decode() if process.stderr else ''}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                time.sleep(1.0)  # every worker has bound the socket; give them a moment to import
                return process
        except OSError:
            time.sleep(0.2)
    stop_server(process)
    raise SystemExit("server did not start in 180 s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's own process group (uvicorn's supervisor and its workers)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- load generator ---------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    measured_s: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, measured window only
    statuses: dict[int, int] = field(default_factory=dict)  # every answer, warm-up included
    failures: list[str] = field(default_factory=list)
    requests_sent: int = 0
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)

    @property
    def ok_in_window(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.ok_in_window / self.measured_s if self.measured_s else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _request(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    path: str,
    headers: dict[str, str],
    body: bytes,
) -> tuple[int, bytes]:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{head}\r\n".encode()
        + body
    )
    status_line = await reader.readuntil(b"\r\n")
    status = int(status_line.split(b" ", 2)[1])
    length = 0
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        elif name.strip().lower() == b"transfer-encoding":
            raise RuntimeError("chunked answers are not expected")
    return status, await reader.readexactly(length)


async def drive(
    port: int,
    path: str,
    tokens: list[str],
    ids: list[str],
    concurrency: int,
    warmup_s: float,
    duration_s: float,
    phase: Phase,
    ok_status: int,
    unique: bool,
) -> None:
    """Send requests from `concurrency` connections; request i uses tokens[i] and ids[i].

    `unique`: each prepared member is used once (a join), and the phase ends when they run out;
    otherwise they are reused round robin (the baseline has no uniqueness to respect).
    """
    next_index = 0
    last_done = 0.0
    started = time.perf_counter()
    window_start, window_end = started + warmup_s, started + warmup_s + duration_s

    async def connection_loop(number: int) -> None:
        nonlocal next_index, last_done
        await asyncio.sleep(number * CONNECT_GAP_S)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < window_end and not (unique and next_index >= len(ids)):
                i = next_index % len(ids)
                next_index += 1
                body = json.dumps(
                    {
                        "full_name": f"会员{i}",
                        "id_number": ids[i],
                        "relation": "self",
                        "health_answers": HEALTH_ANSWERS,
                        "rules_sha256": RULES_SHA256,
                    }
                ).encode()
                headers = {
                    "Authorization": f"Bearer {tokens[i]}",
                    "Idempotency-Key": f"bench-join-{i}",
                }
                sent = time.perf_counter()
                phase.requests_sent += 1
                try:
                    status, answer = await _request(reader, writer, path, headers, body)
                except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                    phase.failures.append(repr(error))
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                done = time.perf_counter()
                phase.statuses[status] = phase.statuses.get(status, 0) + 1
                if status != ok_status and len(phase.failures) < 5:
                    phase.failures.append(f"{status}: {answer[:200]!r}")
                if status == ok_status and window_start <= sent and done <= window_end:
                    phase.latencies.append(done - sent)
                    last_done = max(last_done, done)
        finally:
            writer.close()

    await asyncio.gather(*(connection_loop(number) for number in range(concurrency)))
    phase.measured_s = duration_s
    if unique and next_index >= len(ids):
        phase.measured_s = max(last_done - window_start, 0.0)
        phase.failures.append(
            f"ran out of prepared members after {next_index} requests "
            f"(measured {phase.measured_s:.1f} s): raise --members"
        )


def cpu_seconds(server: subprocess.Popen[bytes], url: str) -> dict[str, float]:
    """CPU seconds so far: the server's processes, this database's backends, this process."""
    import psycopg

    totals = {"server": 0.0, "postgres": 0.0, "load generator": 0.0}
    try:
        processes = [
            psutil.Process(server.pid),
            *psutil.Process(server.pid).children(recursive=True),
        ]
    except psutil.Error:
        processes = []
    with psycopg.connect(url) as connection:
        pids = [
            row[0]
            for row in connection.execute(
                # Client backends only: an autovacuum worker on this database is no request's.
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            ).fetchall()
        ]
    for group, members in (
        ("server", processes),
        ("postgres", [psutil.Process(pid) for pid in pids]),
    ):
        for process in members:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                totals[group] += times.user + times.system
    own = psutil.Process().cpu_times()
    totals["load generator"] = own.user + own.system
    return totals


def run_phase(
    name: str,
    command: list[str],
    env: dict[str, str],
    port: int,
    path: str,
    tokens: list[str],
    ids: list[str],
    args: argparse.Namespace,
    unique: bool,
) -> Phase:
    phase = Phase(name)
    server = start_server(command, env, port)
    try:
        before = cpu_seconds(server, env["MUTUALAID_DATABASE_URL"])
        asyncio.run(
            drive(
                port,
                path,
                tokens,
                ids,
                args.concurrency,
                args.warmup,
                args.duration,
                phase,
                201,
                unique,
            )
        )
        after = cpu_seconds(server, env["MUTUALAID_DATABASE_URL"])
        # Backends that closed during the phase are missed; the pools keep theirs open.
        answered = sum(phase.statuses.values())
        phase.cpu_ms_per_request = (
            {key: (after[key] - before.get(key, 0.0)) / answered * 1000 for key in after}
            if answered
            else {}
        )
    finally:
        stop_server(server)
    return phase


def count_rows(url: str, table: str) -> int:
    import psycopg

    with psycopg.connect(url) as connection:
        row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", OWN_URL),
        help=f"PostgreSQL database to drop and refill (default {OWN_URL})",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="server worker processes (both apps)"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent connections")
    parser.add_argument("--duration", type=float, default=30, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured seconds first")
    parser.add_argument(
        "--members",
        type=int,
        default=20_000,
        help="accounts prepared (one join each; the phase stops if they run out)",
    )
    args = parser.parse_args()
    url = args.database_url

    load = os.getloadavg()[0]
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load:.1f} before the run; server, "
        f"PostgreSQL and this load generator share them. workers={args.workers} "
        f"concurrency={args.concurrency} duration={args.duration:.0f}s (+{args.warmup:.0f}s "
        "warm-up)",
        flush=True,
    )
    started = time.perf_counter()
    tokens = create_members(url, args.members)
    ids = resident_ids(args.members, date.today())
    print(
        f"set-up: {args.members:,} accounts with tokens in {time.perf_counter() - started:.1f} s",
        flush=True,
    )

    env = server_env(url)
    mutualaid = str(Path(sys.executable).with_name("mutualaid"))
    port = free_port()
    joins = run_phase(
        "joins",
        [
            mutualaid,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ],
        env,
        port,
        JOIN_PATH,
        tokens,
        ids,
        args,
        unique=True,
    )
    print(
        f"joins: {joins.rate:,.1f}/s  p50 {joins.percentile(0.5):.1f} ms  "
        f"p99 {joins.percentile(0.99):.1f} ms  answers {joins.statuses}",
        flush=True,
    )

    port = free_port()
    baseline = run_phase(
        "baseline",
        baseline_server_command(port, args.workers),
        env,
        port,
        BASELINE_PATH,
        tokens,
        ids,
        args,
        unique=False,
    )
    print(
        f"baseline: {baseline.rate:,.1f}/s  p50 {baseline.percentile(0.5):.1f} ms  "
        f"p99 {baseline.percentile(0.99):.1f} ms  answers {baseline.statuses}",
        flush=True,
    )

    memberships = count_rows(url, "memberships")
    baseline_rows = count_rows(url, "baseline_rows")
    joined = joins.statuses.get(201, 0)
    inserted = baseline.statuses.get(201, 0)
    ratio = joins.rate / baseline.rate if baseline.rate else float("nan")
    print()
    print("| | requests/s | p50 ms | p99 ms | 201 answers | other answers |")
    print("|---|---:|---:|---:|---:|---|")
    for phase in (joins, baseline):
        others = {k: v for k, v in phase.statuses.items() if k != 201}
        print(
            f"| {phase.name} | {phase.rate:,.1f} | {phase.percentile(0.5):.1f} | "
            f"{phase.percentile(0.99):.1f} | {phase.statuses.get(201, 0):,} | {others or '-'} |"
        )
    print(
        "\nCPU ms per answered request (server processes | PostgreSQL backends | load generator):"
    )
    for phase in (joins, baseline):
        cpu = phase.cpu_ms_per_request
        print(f"  {phase.name}: " + " | ".join(f"{key} {value:.2f}" for key, value in cpu.items()))
    print(
        f"\nratio joins / baseline inserts: {ratio:.2f} (target >= 0.5: "
        f"{'met' if ratio >= 0.5 else 'NOT met'})"
    )
    print(
        f"memberships in the database: {memberships:,}; 201 answers to joins: {joined:,} "
        f"({'equal' if memberships == joined else 'DIFFERENT'}); baseline rows {baseline_rows:,} "
        f"vs 201 answers {inserted:,} ({'equal' if baseline_rows == inserted else 'DIFFERENT'})"
    )
    for phase in (joins, baseline):
        for failure in phase.failures[:5]:
            print(f"  {phase.name}: {failure}")
    print(
        f"load average after the run: {os.getloadavg()[0]:.1f}; total {time.perf_counter() - started:.0f} s"
    )
    if memberships != joined or baseline_rows != inserted:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
