"""Jury votes per second on PostgreSQL through the API, and an exact tally under concurrency.

Xiang Hu Bao's first jury case drew 250,000 votes in 5 hours (about 14 votes/s on average); the
issue asks for >= 2,000 votes/s through the API with several workers. This script:

1. Resets its own database (`bench_votes`), prepares N certified jurors (accounts with bearer tokens, their own
   covered membership of 200 days, a juror certification) set-based in SQL, and one rejected claim
   that its member disputes, which opens an open vote and notifies every eligible juror (one
   INSERT … SELECT: timed and printed).
2. Starts `mutualaid serve --workers W` and casts one vote per juror from C connections for D
   seconds (each vote with the case quiz answered), plus a second vote from some jurors at once
   (must be refused: one member, one vote).
3. Runs the baseline from bench_joins.py (a minimal FastAPI endpoint inserting one row) the same way.
4. Prints votes/s, baseline/s, the ratio, latencies, and checks the tally: votes stored == 201
   answers, approve + reject == votes, no juror twice.

    python benchmarks/bench_votes.py                    # 2 workers, 16 connections, 250,000 jurors
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_joins import (
    BASELINE_PATH,
    CONNECT_GAP_S,
    HERE,
    Phase,
    _request,
    baseline_server_command,
    cpu_seconds,
    free_port,
    start_server,
    stop_server,
)
from cpu_profile import split, top_functions
from databases import PLAN_CODE, fresh_context, server_env, url_for

from mutualaid.clock import FixedClock, SystemClock
from mutualaid.domain.accounts import Role
from mutualaid.domain.claims import RejectionReason
from mutualaid.domain.identities import Sex, make_resident_id
from mutualaid.services.accounts.accounts import Actor, register_account
from mutualaid.services.claims.filing import ClaimReport, report_claim
from mutualaid.services.claims.review import decide_claim, start_review
from mutualaid.services.demo.history import HEALTHY
from mutualaid.services.enrollment.joins import EnrollmentRequest, enroll_member
from mutualaid.services.juries.panels import dispute_rejection
from mutualaid.services.juries.votes import juror_case_file
from mutualaid.services.plans.plans import plan_rules


def prepare(url: str, jurors: int) -> tuple[list[str], int, dict[str, str]]:
    import hashlib
    import secrets

    ctx = fresh_context(url)
    now = datetime.now(UTC)
    joined_on = (now - timedelta(days=200)).date()
    tokens = [secrets.token_urlsafe(24) for _ in range(jurors)]
    raw = ctx.engine.raw_connection()
    started = time.perf_counter()
    try:
        cursor = raw.cursor()
        with cursor.copy("COPY accounts (phone, role, locale, created_at) FROM STDIN") as copy:
            for i in range(jurors):
                copy.write_row((f"137{i:08d}", "member", "zh_CN", now))
        cursor.execute("SELECT id FROM accounts WHERE phone LIKE '137%%' ORDER BY phone")
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
        # Each juror is themself a covered member of the plan (synthetic identity hashes).
        cursor.execute(
            """
            INSERT INTO persons (account_id, relation, identity_hash, identity_ciphertext,
                                 name_ciphertext, name_masked, birth_on, sex, province_code, created_at)
            SELECT id, 'self', md5(phone) || md5('x' || phone), '\\x00', '\\x00', '王*', DATE '1985-06-01',
                   'F', '33', %(now)s FROM accounts WHERE phone LIKE '137%%'""",
            {"now": now},
        )
        cursor.execute(
            """
            INSERT INTO memberships (plan_id, plan_version, person_id, payer_account_id, state,
                                     joined_at, joined_on, waiting_ends_on, covered_from_on, ages_out_on)
            SELECT 1, 1, p.id, p.account_id, 'covered', %(joined_at)s, %(joined_on)s,
                   %(joined_on)s + 90, %(joined_on)s + 91, DATE '2045-06-01'
            FROM persons p JOIN accounts a ON a.id = p.account_id WHERE a.phone LIKE '137%%'""",
            {"joined_at": now - timedelta(days=200), "joined_on": joined_on},
        )
        cursor.execute(
            """INSERT INTO juror_certifications (account_id, passed_at, score)
                          SELECT id, %(now)s, 4 FROM accounts WHERE phone LIKE '137%%'""",
            {"now": now},
        )
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS baseline_rows (id BIGSERIAL PRIMARY KEY, "
            "full_name VARCHAR(50), id_number VARCHAR(30), idempotency_key VARCHAR(200), "
            "created_at TIMESTAMP WITH TIME ZONE)"
        )
        cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    print(
        f"set-up: {jurors:,} certified jurors in {time.perf_counter() - started:.1f} s", flush=True
    )

    # One member whose claim was rejected and who disputes it: this opens the vote.
    ctx.clock = FixedClock(now - timedelta(days=200))
    holder = register_account(ctx, "13600000000", "benchmark-password")
    actor = Actor(holder.id, Role.MEMBER)
    membership = enroll_member(
        ctx,
        actor,
        PLAN_CODE,
        EnrollmentRequest(
            "李四华",
            make_resident_id("33", date(1990, 5, 1), 7, Sex.MALE),
            health_answers=HEALTHY,
            rules_sha256=plan_rules(ctx, PLAN_CODE)[0].rules_sha256,  # agrees to the rules
        ),
    )
    ctx.clock = SystemClock()
    reviewer_view = register_account(ctx, "10000000002", "benchmark-password", role=Role.REVIEWER)
    reviewer = Actor(reviewer_view.id, Role.REVIEWER)
    claim = report_claim(
        ctx,
        actor,
        ClaimReport(membership.id, "CI01", now.date() - timedelta(days=5), "浙江省肿瘤医院"),
    )
    start_review(ctx, reviewer, claim.ref)
    decide_claim(
        ctx,
        reviewer,
        claim.ref,
        approve=False,
        reason_code=RejectionReason.CRITERIA_NOT_MET,
        note="the stage does not meet the definition",
    )
    started = time.perf_counter()
    jury = dispute_rejection(ctx, actor, claim.ref, "the pathology report says otherwise")
    print(
        f"vote opened; every eligible juror notified in {time.perf_counter() - started:.1f} s "
        "(one INSERT … SELECT)",
        flush=True,
    )
    file = juror_case_file(ctx, reviewer, jury.id)
    answers = {
        "illness": file.case.illness_code,
        "age_band": f"{file.case.age // 10 * 10}-{file.case.age // 10 * 10 + 9}",
    }
    ctx.engine.dispose()
    # The set-up wrote 100,000s of rows: vacuumed and analysed now, autovacuum does not do it
    # during the votes phase (it ran there, taking CPU from the votes only: 0.26-0.9 of the
    # baseline from one run to the next).
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM (ANALYZE)")
    print(f"VACUUM (ANALYZE) after the set-up: {time.perf_counter() - started:.1f} s", flush=True)
    return tokens, jury.id, answers


async def drive_votes(
    port: int,
    path: str,
    tokens: list[str],
    answers: dict[str, str],
    concurrency: int,
    warmup: float,
    duration: float,
    phase: Phase,
    doubles: int,
    seconds: dict[tuple[str, int], int],
    first: int = 0,
) -> int:
    """Cast votes with tokens[first:]; returns the index of the first token left unused."""
    next_index = first
    started = time.perf_counter()
    window_start, window_end = started + warmup, started + warmup + duration

    async def loop(number: int) -> None:
        nonlocal next_index
        repeat_first = number == 0
        await asyncio.sleep(number * CONNECT_GAP_S)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < window_end and next_index < len(tokens):
                i = next_index
                next_index += 1
                choice = "approve" if i % 3 else "reject"
                body = json.dumps(
                    {
                        "choice": choice,
                        "quiz_answers": answers,
                        "full_name": "x",
                        "id_number": str(i),
                    }
                ).encode()
                sent = time.perf_counter()
                status, answer = await _request(
                    reader, writer, path, {"Authorization": f"Bearer {tokens[i]}"}, body
                )
                done = time.perf_counter()
                phase.statuses[status] = phase.statuses.get(status, 0) + 1
                if status not in (201,) and len(phase.failures) < 5:
                    phase.failures.append(f"{status}: {answer[:200]!r}")
                if status == 201 and window_start <= sent and done <= window_end:
                    phase.latencies.append(done - sent)
                if repeat_first and i < first + doubles and path != BASELINE_PATH:
                    # A retry of the same vote (answered with the first receipt), then a change
                    # of mind (refused): neither may add a vote.
                    other = "reject" if choice == "approve" else "approve"
                    for kind, again in (
                        ("retry", body),
                        (
                            "change",
                            body.replace(
                                f'"choice": "{choice}"'.encode(), f'"choice": "{other}"'.encode()
                            ),
                        ),
                    ):
                        status, _ = await _request(
                            reader, writer, path, {"Authorization": f"Bearer {tokens[i]}"}, again
                        )
                        seconds[(kind, status)] = seconds.get((kind, status), 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(loop(number) for number in range(concurrency)))
    phase.measured_s = duration
    return next_index


def tally(url: str, jury_id: int) -> tuple[int, int, int, int]:
    import psycopg

    with psycopg.connect(url) as connection:
        votes, approve, reject, distinct = connection.execute(
            "SELECT count(*), count(*) FILTER (WHERE choice = 'approve'), "
            "count(*) FILTER (WHERE choice = 'reject'), count(DISTINCT juror_account_id) "
            "FROM jury_votes WHERE jury_case_id = %s",
            (jury_id,),
        ).fetchone()  # type: ignore[misc]
        return int(votes), int(approve), int(reject), int(distinct)


def server_command(name: str, port: int, workers: int, profile_to: Path | None) -> list[str]:
    """The votes server (`mutualaid serve`) or the baseline's, as the benchmark starts them; with
    `profile_to`, the same app and uvicorn settings in one profiled worker (cpu_profile.py)."""
    if profile_to is not None:
        app, extra = (
            ("mutualaid.api.app:app_from_environment", ["--no-proxy-headers"])
            if name == "votes"
            else ("bench_joins:baseline_app", ["--app-dir", str(HERE)])
        )
        return [
            sys.executable,
            str(HERE / "cpu_profile.py"),
            str(profile_to),
            app,
            "--factory",
            "--port",
            str(port),
            *extra,
        ]
    if name == "votes":
        return [
            str(Path(sys.executable).with_name("mutualaid")),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
    return baseline_server_command(port, workers)


def database_sessions(url: str) -> int:
    """Sessions ever opened on the database (pg_stat_database, PostgreSQL 14+)."""
    import psycopg

    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def run_phase(
    name: str,
    path: str,
    args: argparse.Namespace,
    env: dict[str, str],
    tokens: list[str],
    answers: dict[str, str],
    seconds: dict[tuple[str, int], int],
    first: int,
    profile_to: Path | None = None,
) -> tuple[Phase, int]:
    """One phase: start the server, drive it, stop it; the phase (with its CPU milliseconds per
    answer: server processes, this database's backends, the load generator) and the next token."""
    port = free_port()
    phase = Phase(name)
    server = start_server(server_command(name, port, args.workers, profile_to), env, port)
    if profile_to is not None:
        # The profile starts after the warm-up (start-up and first uses are no request's cost).
        threading.Timer(args.warmup, os.kill, (server.pid, signal.SIGUSR1)).start()
    try:
        sessions = database_sessions(env["MUTUALAID_DATABASE_URL"])
        before = cpu_seconds(server, env["MUTUALAID_DATABASE_URL"])
        following = asyncio.run(
            drive_votes(
                port,
                path,
                tokens,
                answers,
                args.concurrency,
                args.warmup,
                args.duration,
                phase,
                args.doubles if profile_to is None else 0,
                seconds,
                first if name == "votes" else 0,
            )
        )
        after = cpu_seconds(server, env["MUTUALAID_DATABASE_URL"])
        sessions = database_sessions(env["MUTUALAID_DATABASE_URL"]) - sessions - 2  # ours
        answered = sum(phase.statuses.values())
        if answered:
            phase.cpu_ms_per_request = {
                key: (after[key] - before.get(key, 0.0)) / answered * 1000 for key in after
            }
    finally:
        stop_server(server)
    label = f"{name} (profiled, 1 worker)" if profile_to else name
    # A backend that ends within the phase takes its CPU with it (cpu_seconds misses it).
    print(f"  database sessions opened in the phase: {sessions}", flush=True)
    print(
        f"{label}: {phase.rate:,.1f}/s  p50 {phase.percentile(0.5):.1f} ms  "
        f"p99 {phase.percentile(0.99):.1f} ms  answers {phase.statuses}",
        flush=True,
    )
    print(
        "  CPU µs per answer: "
        + " | ".join(
            f"{key} {value * 1000:,.0f}" for key, value in phase.cpu_ms_per_request.items()
        ),
        flush=True,
    )
    return phase, following if name == "votes" else first


def print_split(phases: dict[str, Phase], profiles: dict[str, Path]) -> None:
    """The CPU of a vote and of a baseline request, µs per answer, split by part: the server's
    processes as the profile's fractions of their unprofiled CPU, PostgreSQL's backends and the
    load generator as measured."""
    splits = {name: split(str(profile)) for name, profile in profiles.items()}
    parts = sorted(
        {part for shares, _ in splits.values() for part in shares},
        key=lambda part: -splits["votes"][0].get(part, 0.0),
    )
    print("\nCPU µs per answer (server parts: profile share × unprofiled server CPU)")
    print(f"  {'part':<52} {'vote':>8} {'baseline':>9}")
    rows: list[tuple[str, dict[str, float]]] = []
    for part in parts:
        rows.append(
            (
                part,
                {
                    name: shares.get(part, 0.0)
                    / total
                    * phases[name].cpu_ms_per_request.get("server", 0.0)
                    * 1000
                    for name, (shares, total) in splits.items()
                },
            )
        )
    for label, key in (
        ("= server process(es), unprofiled", "server"),
        ("PostgreSQL backends", "postgres"),
        ("load generator", "load generator"),
    ):
        rows.append(
            (label, {name: phases[name].cpu_ms_per_request.get(key, 0.0) * 1000 for name in splits})
        )
    for label, values in rows:
        print(f"  {label:<52} {values['votes']:>8,.0f} {values['baseline']:>9,.0f}")
    for name, profile in profiles.items():
        print(f"\nmost own CPU, {name} (profiled worker, {profile}):")
        for line in top_functions(str(profile), 20):
            print(f"  {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        default=url_for("bench_votes"),
        help="its own database, dropped and refilled (never `test`)",
    )
    parser.add_argument("--jurors", type=int, default=250_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument(
        "--doubles", type=int, default=200, help="jurors who also send a second vote"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="afterwards, run each phase again in one worker under cProfile (a CPU clock per "
        "thread), write DIR/votes.prof and DIR/baseline.prof and print the CPU split per part",
    )
    args = parser.parse_args()
    url = args.database_url
    print(
        f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; server, PostgreSQL and "
        f"load generator share them. workers={args.workers} concurrency={args.concurrency}",
        flush=True,
    )
    tokens, jury_id, answers = prepare(url, args.jurors)
    env = server_env(url)

    phases: dict[str, Phase] = {}
    seconds: dict[tuple[str, int], int] = {}
    accepted = 0
    first = 0
    paths = {"votes": f"/api/v1/juries/{jury_id}/votes", "baseline": BASELINE_PATH}
    for name, path in paths.items():
        phases[name], first = run_phase(name, path, args, env, tokens, answers, seconds, first)
    accepted += phases["votes"].statuses.get(201, 0)
    votes_phase, baseline = phases["votes"], phases["baseline"]
    ratio = votes_phase.rate / baseline.rate if baseline.rate else float("nan")
    print(
        f"\nratio votes / baseline inserts: {ratio:.2f}; target >= 2,000 votes/s: "
        f"{'met' if votes_phase.rate >= 2000 else 'NOT met'}; load {os.getloadavg()[0]:.1f}"
    )
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        profiles = {name: args.profile / f"{name}.prof" for name in paths}
        for name, path in paths.items():
            profile = profiles[name]
            profile.unlink(missing_ok=True)
            profiled, first = run_phase(
                name, path, args, env, tokens, answers, seconds, first, profile
            )
            if name == "votes":
                accepted += profiled.statuses.get(201, 0)
        print_split(phases, profiles)
    votes, approve, reject, distinct = tally(url, jury_id)
    print(
        f"tally: {votes:,} votes stored, {accepted:,} accepted answers, {approve:,} approve + "
        f"{reject:,} reject, {distinct:,} distinct jurors"
    )
    retries, changes = (
        {s: n for (k, s), n in seconds.items() if k == kind} for kind in ("retry", "change")
    )
    print(
        f"same vote sent again: {retries} (201: the first receipt); "
        f"a different second vote: {changes} (409: refused)"
    )
    exact = (
        votes == accepted == approve + reject == distinct
        and set(retries) <= {201}
        and set(changes) <= {409}
    )
    print(f"tally exact under concurrency: {'yes' if exact else 'NO'}")
    for failure in votes_phase.failures[:5]:
        print(f"  votes: {failure}")
    if not exact:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
