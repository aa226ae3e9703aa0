"""The worker over a month of the demo plans' calendar, with a fixed clock: every job runs at its
instant in Asia/Shanghai, two workers never run one twice, and a close a worker died in is
finished by the other with one charge per member."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from threading import Barrier
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select
from tests.factories import (
    LOCK_MARCH_7,
    MAIN_PLAN,
    MARCH_7,
    approved_claim,
    members,
    publish_demo_plans,
    use_rules,
)

from mutualaid.clock import FixedClock
from mutualaid.db.models import (
    LedgerTransaction,
    LogEntry,
    Membership,
    Period,
    Plan,
    ScheduledRun,
)
from mutualaid.domain.apportionment import PeriodState
from mutualaid.domain.errors import DomainError
from mutualaid.services.accounts.accounts import SYSTEM_ACTOR
from mutualaid.services.collections.providers import SimulatedProvider
from mutualaid.services.context import ServiceContext
from mutualaid.services.ledger.ledger import unbalanced_transactions
from mutualaid.services.periods.proofs import charge_proof, published_trust
from mutualaid.services.scheduling.jobs import JobEnvironment
from mutualaid.services.scheduling.worker import (
    RunResult,
    schedule_table,
    tick,
)
from mutualaid.services.transparency.checkpoints import LogConfig
from mutualaid.transparency.charge_proofs import parse_charge_proof, verify_charge_proof
from mutualaid.transparency.verification import TrustPolicy

SHANGHAI = ZoneInfo("Asia/Shanghai")
Witnesses = tuple[LogConfig, httpx.Client, TrustPolicy]


class Killed(BaseException):
    """The worker's process dies here (no handler of ours catches a BaseException)."""


@pytest.fixture
def env(witnesses: Witnesses) -> JobEnvironment:
    config, http, _policy = witnesses
    return JobEnvironment(provider=SimulatedProvider(), log_config=lambda: config, http=http)


@pytest.fixture
def people(ctx: ServiceContext, clock: FixedClock) -> int:
    publish_demo_plans(ctx)
    use_rules(ctx)
    joined = members(ctx, clock, 5)
    approved_claim(ctx, joined[0][1].id, 1000, LOCK_MARCH_7 - timedelta(days=1))
    return len(joined)


def local(instant: datetime) -> datetime:
    return instant.astimezone(SHANGHAI)


def charges_of(ctx: ServiceContext) -> list[tuple[date, int]]:
    with ctx.reading() as session:
        return [
            (on, count)
            for on, count in session.execute(
                select(Period.publicity_on, func.count(LedgerTransaction.id))
                .join(LedgerTransaction, LedgerTransaction.period_id == Period.id)
                .where(LedgerTransaction.kind == "period_charge")
                .group_by(Period.publicity_on)
                .order_by(Period.publicity_on)
            )
        ]


def test_a_month_of_the_demo_plan_runs_every_job_on_its_day_in_shanghai(
    ctx: ServiceContext, clock: FixedClock, env: JobEnvironment, people: int
) -> None:
    # A claim approved in mid-March is shared in the period of the 21st.
    approved_claim(ctx, _membership_ids(ctx)[1], 500, datetime(2026, 3, 15, tzinfo=UTC))
    # At 00:00 Shanghai every day, from 2 March to 1 April.
    ran: list[tuple[datetime, RunResult]] = []
    for day in range(31):
        clock.set(datetime(2026, 3, 1, 16, 0, tzinfo=UTC) + timedelta(days=day))
        ran += [(clock.now(), result) for result in tick(ctx, env, "worker-a")]

    assert [r for _, r in ran if r.state not in ("succeeded", "skipped")] == []
    by_job: dict[str, list[tuple[datetime, RunResult]]] = {}
    for at, result in ran:
        if result.scope in (MAIN_PLAN, ""):
            by_job.setdefault(result.job, []).append((at, result))

    def days(job: str) -> list[int]:
        return [local(r.due_at).day for _, r in by_job[job]]

    # Each calendar job ran once per instant, on the plan's days, at its instant in Shanghai.
    assert days("period_close") == [7, 21]
    assert days("collection") == [14, 28]
    for job in ("coverage", "publicity"):
        assert days(job) == [*range(2, 32), 1], job
    assert days("retries") == list(range(2, 32))  # at 01:00, run at the next tick
    for job in ("period_close", "collection", "coverage", "publicity"):
        assert all(at == r.due_at and local(at).hour == 0 for at, r in by_job[job]), job
    assert all(
        local(r.due_at).hour == 1 and at - r.due_at == timedelta(hours=23)
        for at, r in by_job["retries"]
    )
    # Site jobs: the latest instant of each, at every tick; pruning daily at 03:00 UTC.
    assert len(by_job["notifications"]) == len(by_job["log_checkpoint"]) == 31
    assert len(by_job["juries"]) == 31
    assert [(r.due_at.day, r.due_at.hour) for _, r in by_job["prune_rate_limits"]] == [
        (day, 3) for day in range(1, 32)
    ]
    # The money: two periods, each charged once and collected once, and the books balance.
    assert charges_of(ctx) == [(date(2026, 3, 7), 1), (date(2026, 3, 21), 1)]
    with ctx.reading() as session:
        periods = session.execute(
            select(Period.publicity_on, Period.state, Period.member_count)
            .join(Plan, Plan.id == Period.plan_id)
            .where(Plan.code == MAIN_PLAN)
            .order_by(Period.publicity_on)
        ).all()
        assert unbalanced_transactions(session) == []
        queued = session.scalar(select(func.count()).where(LogEntry.leaf_index.is_(None)))
    assert [tuple(row) for row in periods] == [
        (date(2026, 3, 7), PeriodState.COLLECTED, people),
        (date(2026, 3, 21), PeriodState.COLLECTED, people),
    ]
    assert queued == 0  # every leaf is in a checkpoint
    # Ticking again at the same instant runs nothing.
    assert tick(ctx, env, "worker-b") == []


@pytest.mark.parametrize("workers", [2])
def test_two_workers_at_the_same_instant_run_each_job_once(
    ctx: ServiceContext, clock: FixedClock, env: JobEnvironment, people: int, workers: int
) -> None:
    clock.set(LOCK_MARCH_7 - timedelta(hours=1))
    tick(ctx, env, "warm-up")
    barrier = Barrier(workers)

    def worker(name: str) -> list[RunResult]:
        barrier.wait()
        return tick(ctx, env, name)

    clock.set(LOCK_MARCH_7)
    with ThreadPoolExecutor(workers) as pool:
        results = [r for batch in pool.map(worker, ["a", "b"]) for r in batch]
    counted = Counter((r.job, r.scope, r.due_at) for r in results)
    assert counted and max(counted.values()) == 1
    assert counted[("period_close", MAIN_PLAN, LOCK_MARCH_7)] == 1
    assert charges_of(ctx) == [(MARCH_7, 1)]
    with ctx.reading() as session:
        assert session.scalar(select(func.count()).select_from(Period)) == 2  # both plans
        assert (
            session.scalar(
                select(func.count())
                .select_from(LogEntry)
                .where(LogEntry.leaf_type == "period_commitment")
            )
            == 2
        )


@pytest.mark.parametrize("point", ["computing", "computed", "tree"])
def test_a_worker_killed_mid_close_leaves_it_to_the_next_which_charges_each_member_once(
    ctx: ServiceContext, clock: FixedClock, env: JobEnvironment, people: int, point: str
) -> None:
    clock.set(LOCK_MARCH_7 - timedelta(minutes=1))
    tick(ctx, env, "warm-up")

    def die(job: str, scope: str, step: str) -> None:
        if (job, scope, step) == ("period_close", MAIN_PLAN, point):
            raise Killed(step)

    clock.set(LOCK_MARCH_7)
    with pytest.raises(Killed):
        tick(ctx, env, "worker-a", on_step=die)
    with ctx.reading() as session:
        run = session.scalars(
            select(ScheduledRun).where(
                ScheduledRun.job == "period_close", ScheduledRun.scope == MAIN_PLAN
            )
        ).one()
        assert (run.state, run.lease_owner) == ("running", "worker-a")
        killed_in = session.scalar(select(Period.state).where(Period.ref.contains(MAIN_PLAN)))
    assert killed_in in ("locked", "computed")

    # While the lease holds, the other worker leaves the close alone (and runs the rest).
    finished = tick(ctx, env, "worker-b")
    assert "period_close" not in {r.job for r in finished if r.scope == MAIN_PLAN}
    line = next(
        line
        for line in schedule_table(ctx)
        if line.job == "period_close" and line.scope == MAIN_PLAN
    )
    assert line.running_on == "worker-a" and line.next_run_at is None

    clock.advance(timedelta(minutes=31))
    resumed = [r for r in tick(ctx, env, "worker-b") if r.job == "period_close"]
    assert [(r.scope, r.state) for r in resumed if r.scope == MAIN_PLAN] == [
        (MAIN_PLAN, "succeeded")
    ]
    assert charges_of(ctx) == [(MARCH_7, 1)]
    with ctx.reading() as session:
        period = session.scalars(select(Period).where(Period.ref == f"{MAIN_PLAN}/{MARCH_7}")).one()
        assert (period.state, period.member_count) == (PeriodState.COMMITTED, people)
        # 1000 + 80 fee over 5 members = 216 each.
        assert (period.share_fen, period.total_charged_fen) == (216, 1080)
        run = session.get_one(ScheduledRun, run.id)
        assert (run.state, run.attempts, run.lease_owner) == ("succeeded", 2, "worker-b")
    membership_ids = _membership_ids(ctx)
    for membership_id in membership_ids:
        proof = charge_proof(ctx, SYSTEM_ACTOR, membership_id, MAIN_PLAN, MARCH_7)
        verify_charge_proof(parse_charge_proof(proof.to_json()), published_trust(ctx))
        assert proof.charge_fen == 216


def test_a_failing_job_is_retried_after_1_2_4_minutes_and_shows_its_error(
    ctx: ServiceContext, clock: FixedClock, people: int
) -> None:
    def no_key() -> LogConfig:
        raise DomainError("log_key_missing", "MUTUALAID_LOG_KEY_FILE is not set")

    env = JobEnvironment(provider=SimulatedProvider(), log_config=no_key)
    clock.set(datetime(2026, 3, 2, 4, 0, tzinfo=UTC))
    attempts = []
    for seconds in (0, 30, 60, 120, 180, 240):
        clock.set(datetime(2026, 3, 2, 4, 0, tzinfo=UTC) + timedelta(seconds=seconds))
        if any(r.job == "log_checkpoint" for r in tick(ctx, env, "w")):
            attempts.append(seconds)
    assert attempts == [0, 60, 180]  # then 4 minutes later: 420 s
    line = next(line for line in schedule_table(ctx) if line.job == "log_checkpoint")
    assert line.last_state == "failed"
    assert line.last_outcome == "log_key_missing: MUTUALAID_LOG_KEY_FILE is not set"
    assert line.failed_attempts == 3
    assert line.next_run_at == datetime(2026, 3, 2, 4, 7, tzinfo=UTC)
    # The next five-minute instant replaces the failed one: only the latest checkpoint matters.
    clock.set(datetime(2026, 3, 2, 4, 5, tzinfo=UTC))
    assert [r.due_at for r in tick(ctx, env, "w") if r.job == "log_checkpoint"] == [clock.now()]
    with ctx.reading() as session:
        states = Counter(
            session.scalars(select(ScheduledRun.state).where(ScheduledRun.job == "log_checkpoint"))
        )
    assert states == Counter({"superseded": 1, "failed": 1})


def test_a_post_paid_plan_without_a_provider_skips_its_collection(
    ctx: ServiceContext, clock: FixedClock, people: int
) -> None:
    env = JobEnvironment(provider=None)
    clock.set(LOCK_MARCH_7)
    tick(ctx, env, "w")
    clock.set(datetime(2026, 3, 13, 16, 0, tzinfo=UTC))
    collected = [r for r in tick(ctx, env, "w") if r.job == "collection" and r.scope == MAIN_PLAN]
    assert [r.state for r in collected] == ["skipped"]
    assert "collection file" in collected[0].outcome
    with ctx.reading() as session:
        assert session.scalar(
            select(Period.state).where(Period.ref == f"{MAIN_PLAN}/{MARCH_7}")
        ) == (PeriodState.COMMITTED)


def _membership_ids(ctx: ServiceContext) -> list[int]:
    with ctx.reading() as session:
        return list(
            session.scalars(
                select(Membership.id)
                .join(Plan, Plan.id == Membership.plan_id)
                .where(Plan.code == MAIN_PLAN)
            )
        )


def test_a_first_start_late_in_the_month_closes_and_collects_the_missed_periods_in_order(
    ctx: ServiceContext, clock: FixedClock, env: JobEnvironment, people: int
) -> None:
    clock.set(datetime(2026, 3, 25, 2, 0, tzinfo=UTC))
    ran = [(r.job, local(r.due_at).day) for r in tick(ctx, env, "w") if r.scope == MAIN_PLAN]
    assert [item for item in ran if item[0] in ("period_close", "collection")] == [
        ("period_close", 7),
        ("collection", 14),
        ("period_close", 21),
    ]
    assert ("coverage", 25) in ran
    with ctx.reading() as session:
        states = session.execute(
            select(Period.publicity_on, Period.state)
            .join(Plan, Plan.id == Period.plan_id)
            .where(Plan.code == MAIN_PLAN)
            .order_by(Period.publicity_on)
        ).all()
    assert [tuple(row) for row in states] == [
        (MARCH_7, PeriodState.COLLECTED),
        (date(2026, 3, 21), PeriodState.COMMITTED),
    ]
