"""The worker's loop: fill the run rows the calendar makes due, lease one, run it, record it.

Each tick (`tick`) does three things, each its own short transaction:

1. **schedule** (`schedule_due`): for every job kind × scope (each open plan, or the site), the due
   instants since the last run row become rows of `scheduled_runs`, inserted with ON CONFLICT DO
   NOTHING on UNIQUE(job, scope, due_at), so that two workers seeing the same instant make one row;
2. **claim** (`claim_next`): the oldest runnable row (pending, failed and past its back-off, or
   running with an expired lease), with no older unfinished row of the same job and scope, is
   taken with `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite has a single writer: the
   transaction begins IMMEDIATE) and leased to this worker;
3. **run** (`run_claimed`): the use case runs outside that transaction while a heartbeat thread
   renews the lease; the outcome (or the failure's code and message, and the next attempt after
   1, 2, 4 … minutes) is written only if this worker still holds the lease.

A worker killed in the middle leaves its row running until the lease expires; the next worker
takes it over and the idempotent use case continues where the first one stopped.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import and_, case, delete, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from mutualaid.db.models import SITE_SCOPE, Plan, ScheduledRun
from mutualaid.db.queries.plans import current_rules
from mutualaid.db.queries.scheduling import insert_run_if_absent
from mutualaid.domain.errors import DomainError
from mutualaid.domain.schedule import (
    JOB_NAMES,
    JOBS,
    SITE_CALENDAR,
    Calendar,
    JobKind,
    due_between,
    job_kind,
    latest_due,
    next_due,
    plan_calendar,
    retry_delay,
)
from mutualaid.domain.schemes import PlanStatus
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import UnitOfWork
from mutualaid.services.scheduling.jobs import JobEnvironment, run_job

log = structlog.get_logger()

PENDING, RUNNING, SUCCEEDED, FAILED, SKIPPED, SUPERSEDED = (
    "pending",
    "running",
    "succeeded",
    "failed",
    "skipped",
    "superseded",
)
#: A run in one of these states still has to happen: later instants of its job wait for it.
OPEN_STATES = (PENDING, RUNNING, FAILED)
#: Finished runs are kept this long (for `worker --list`, the console and the catch-up).
KEEP_FINISHED = timedelta(days=40)
#: On a first start, catch-up jobs (close, collection) look back this far.
FIRST_CATCH_UP = timedelta(days=31)

#: Called once per finished run with (job, outcome, seconds); outcome is succeeded, failed or
#: skipped. The metrics module connects here (api/metrics.py: record_job).
JobFinished = Callable[[str, str, float], None]
#: Called with (job, scope, step) at each point a close or a collection may be interrupted.
StepCallback = Callable[[str, str, str], None]


def worker_name() -> str:
    """host:pid:random — unique per process, readable in `--list` and the logs."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


# --- which job runs where ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobScope:
    job: JobKind
    #: The plan's code, or SITE_SCOPE.
    scope: str
    calendar: Calendar
    #: No instant before this (the plan's creation) is ever due.
    not_before: datetime | None


def job_scopes(session: Session) -> Iterator[JobScope]:
    """Every job kind for every plan that is not closed (in the plan's zone), and site jobs."""
    plans = session.scalars(
        select(Plan).where(Plan.status != PlanStatus.CLOSED).order_by(Plan.code)
    ).all()
    calendars = [(plan.code, plan_calendar(current_rules(session, plan)), plan) for plan in plans]
    for job in JOBS:
        if job.per_plan:
            for code, calendar, plan in calendars:
                yield JobScope(job, code, calendar, plan.created_at)
        else:
            yield JobScope(job, SITE_SCOPE, SITE_CALENDAR, None)


# --- 1. schedule ------------------------------------------------------------------------------------


def _instants_due(entry: JobScope, previous: datetime | None, now: datetime) -> list[datetime]:
    trigger = entry.job.trigger
    if previous is None and entry.job.catch_up:
        # A first start: every instant of the last month (periods close in order, so a close
        # missed before the worker existed is not skipped), none before the plan existed.
        since = now - FIRST_CATCH_UP
        if entry.not_before is not None:
            since = max(since, entry.not_before - timedelta(microseconds=1))
        return due_between(trigger, entry.calendar, since, now)
    if previous is None or not entry.job.catch_up:
        latest = latest_due(trigger, entry.calendar, now)
        if previous is not None and latest <= previous:
            return []
        if entry.not_before is not None and latest < entry.not_before:
            return []
        return [latest]
    return due_between(trigger, entry.calendar, previous, now)


def schedule_due(ctx: ServiceContext) -> int:
    """Create the run rows that are due now; returns how many this call created."""
    uow: UnitOfWork[int] = ctx.unit_of_work()
    with uow:
        session = uow.session
        now = ctx.clock.now()
        last = {
            (job, scope): due
            for job, scope, due in session.execute(
                select(
                    ScheduledRun.job, ScheduledRun.scope, func.max(ScheduledRun.due_at)
                ).group_by(ScheduledRun.job, ScheduledRun.scope)
            )
        }
        created = 0
        for entry in job_scopes(session):
            due = _instants_due(entry, last.get((entry.job.name, entry.scope)), now)
            for instant in due:
                created += insert_run_if_absent(
                    session,
                    {
                        "job": entry.job.name,
                        "scope": entry.scope,
                        "due_at": instant,
                        "state": PENDING,
                        "attempts": 0,
                        "next_attempt_at": instant,
                        "created_at": now,
                    },
                )
            if due and not entry.job.catch_up:
                # Only the latest instant of a job that catches up by itself needs to run.
                session.execute(
                    update(ScheduledRun)
                    .where(
                        ScheduledRun.job == entry.job.name,
                        ScheduledRun.scope == entry.scope,
                        ScheduledRun.due_at < due[-1],
                        ScheduledRun.state.in_((PENDING, FAILED)),
                    )
                    .values(state=SUPERSEDED)
                )
        session.execute(
            delete(ScheduledRun).where(
                ScheduledRun.state.in_((SUCCEEDED, SKIPPED, SUPERSEDED)),
                ScheduledRun.due_at < now - KEEP_FINISHED,
            )
        )
        uow.commit(created)
    return uow.result


# --- 2. claim ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    job: str
    scope: str
    due_at: datetime
    attempts: int
    owner: str


_JOB_ORDER = case({name: rank for rank, name in enumerate(JOB_NAMES)}, value=ScheduledRun.job)


def claim_next(ctx: ServiceContext, owner: str) -> Claimed | None:
    """Lease the next runnable run to `owner` (None: nothing is runnable now)."""
    uow: UnitOfWork[Claimed | None] = ctx.unit_of_work()
    with uow:
        session = uow.session
        now = ctx.clock.now()
        earlier = aliased(ScheduledRun)
        waits_for_earlier = (
            select(earlier.id)
            .where(
                earlier.job == ScheduledRun.job,
                earlier.scope == ScheduledRun.scope,
                earlier.due_at < ScheduledRun.due_at,
                earlier.state.in_(OPEN_STATES),
            )
            .exists()
        )
        runnable = or_(
            and_(ScheduledRun.state.in_((PENDING, FAILED)), ScheduledRun.next_attempt_at <= now),
            and_(ScheduledRun.state == RUNNING, ScheduledRun.lease_until <= now),
        )
        run = session.scalars(
            select(ScheduledRun)
            .where(runnable, ~waits_for_earlier)
            .order_by(ScheduledRun.due_at, _JOB_ORDER, ScheduledRun.id)
            .limit(1)
            .with_for_update(skip_locked=True, of=ScheduledRun)
        ).first()
        if run is None:
            uow.commit(None)
            return uow.result
        if run.state == RUNNING:
            log.warning(
                "job_lease_taken_over", job=run.job, scope=run.scope, previous=run.lease_owner
            )
        run.state = RUNNING
        run.lease_owner = owner
        run.lease_until = now + job_kind(run.job).lease
        run.attempts += 1
        run.started_at = now
        uow.commit(Claimed(run.id, run.job, run.scope, run.due_at, run.attempts, owner))
    return uow.result


def renew_lease(ctx: ServiceContext, claimed: Claimed) -> bool:
    """Extend the lease while the job runs; False when another worker has taken it over."""
    uow: UnitOfWork[bool] = ctx.unit_of_work()
    with uow:
        result = uow.session.execute(
            update(ScheduledRun)
            .where(
                ScheduledRun.id == claimed.id,
                ScheduledRun.lease_owner == claimed.owner,
                ScheduledRun.state == RUNNING,
            )
            .values(lease_until=ctx.clock.now() + job_kind(claimed.job).lease)
        )
        uow.commit(bool(getattr(result, "rowcount", 0)))
    return uow.result


class _Heartbeat:
    """Renews the lease every third of its length while the job runs (a thread of its own: the
    job's transactions may hold SQLite's write lock, which the renewal then simply waits for)."""

    def __init__(self, ctx: ServiceContext, claimed: Claimed) -> None:
        self.ctx, self.claimed = ctx, claimed
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)

    def _beat(self) -> None:
        every = job_kind(self.claimed.job).lease.total_seconds() / 3
        while not self.stop.wait(every):
            try:
                if not renew_lease(self.ctx, self.claimed):
                    log.warning("job_lease_lost", job=self.claimed.job, scope=self.claimed.scope)
                    return
            except Exception as error:  # a busy database: try again at the next beat
                log.warning("job_lease_renewal_failed", error=type(error).__name__)

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()


# --- 3. run -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunResult:
    job: str
    scope: str
    due_at: datetime
    state: str
    outcome: str
    seconds: float
    #: False when the lease was lost meanwhile (another worker took the run over): not recorded.
    recorded: bool = True


def _failure(error: Exception) -> tuple[str, str]:
    """The code and message kept for a failure: a refusal's own (plan codes, period refs, counts);
    for anything else only the exception's type, never its text (which may quote data)."""
    if isinstance(error, DomainError):
        return error.code[:60], error.message[:300]
    return "internal_error", type(error).__name__


def _finish(
    ctx: ServiceContext,
    claimed: Claimed,
    state: str,
    outcome: str | None,
    error: tuple[str, str] | None,
) -> bool:
    uow: UnitOfWork[bool] = ctx.unit_of_work()
    with uow:
        session = uow.session
        now = ctx.clock.now()
        run = session.get(ScheduledRun, claimed.id, with_for_update=True)
        if run is None or run.lease_owner != claimed.owner or run.state != RUNNING:
            uow.commit(False)
            return uow.result
        run.state = state
        run.finished_at = now
        run.lease_until = None
        run.outcome = outcome[:300] if outcome is not None else None
        run.error_code, run.error_message = error or (None, None)
        if state == FAILED:
            run.next_attempt_at = now + retry_delay(run.attempts)
        uow.commit(True)
    return uow.result


def run_claimed(
    ctx: ServiceContext,
    env: JobEnvironment,
    claimed: Claimed,
    *,
    on_step: StepCallback | None = None,
    on_job_finished: JobFinished | None = None,
) -> RunResult:
    """Run a leased job and record its outcome (a failure is retried after its back-off)."""

    def hook(step: str) -> None:
        if on_step is not None:
            on_step(claimed.job, claimed.scope, step)

    started = time.monotonic()
    error: tuple[str, str] | None = None
    with _Heartbeat(ctx, claimed):
        try:
            done = run_job(ctx, env, claimed.job, claimed.scope, claimed.due_at, hook)
        except Exception as failure:
            error = _failure(failure)
            state, outcome = FAILED, f"{error[0]}: {error[1]}"
            log.warning(
                "job_failed",
                job=claimed.job,
                scope=claimed.scope,
                due_at=claimed.due_at.isoformat(),
                attempt=claimed.attempts,
                error_code=error[0],
            )
        else:
            state, outcome = (SKIPPED if done.skipped else SUCCEEDED), done.outcome
    seconds = time.monotonic() - started
    recorded = _finish(ctx, claimed, state, outcome if error is None else None, error)
    log.info(
        "job_finished",
        job=claimed.job,
        scope=claimed.scope,
        due_at=claimed.due_at.isoformat(),
        state=state,
        seconds=round(seconds, 3),
        recorded=recorded,
    )
    # --- the one call site for metrics: the integrator connects api/metrics.py's record_job here.
    if on_job_finished is not None:
        on_job_finished(claimed.job, state, seconds)
    return RunResult(claimed.job, claimed.scope, claimed.due_at, state, outcome, seconds, recorded)


# --- the loop ---------------------------------------------------------------------------------------


def tick(
    ctx: ServiceContext,
    env: JobEnvironment,
    owner: str,
    *,
    max_runs: int = 1000,
    stop: threading.Event | None = None,
    on_step: StepCallback | None = None,
    on_job_finished: JobFinished | None = None,
) -> list[RunResult]:
    """One pass at the clock's current instant: schedule what is due, run what is runnable."""
    schedule_due(ctx)
    results: list[RunResult] = []
    while len(results) < max_runs and not (stop is not None and stop.is_set()):
        claimed = claim_next(ctx, owner)
        if claimed is None:
            break
        results.append(
            run_claimed(ctx, env, claimed, on_step=on_step, on_job_finished=on_job_finished)
        )
    return results


def seconds_to_next(ctx: ServiceContext, *, longest: float = 60.0) -> float:
    """How long the loop may sleep: until the next due instant or retry, at most `longest`."""
    now = ctx.clock.now()
    upcoming = [line.next_run_at for line in schedule_table(ctx) if line.next_run_at is not None]
    soonest = min(upcoming, default=now + timedelta(seconds=longest))
    return max(1.0, min(longest, (soonest - now).total_seconds()))


def run_worker(
    ctx: ServiceContext,
    env: JobEnvironment,
    stop: threading.Event,
    *,
    owner: str | None = None,
    longest_sleep: float = 60.0,
    on_job_finished: JobFinished | None = None,
) -> None:
    """Tick until `stop` is set (SIGTERM, SIGINT), sleeping until the next due instant between
    ticks. A job that is running when `stop` is set finishes first; none is started after."""
    name = owner or worker_name()
    log.info("worker_started", worker=name)
    while not stop.is_set():
        try:
            tick(ctx, env, name, stop=stop, on_job_finished=on_job_finished)
            pause = seconds_to_next(ctx, longest=longest_sleep)
        except Exception as error:  # the database is away: wait and try again
            log.error("worker_tick_failed", error=type(error).__name__)
            pause = longest_sleep
        stop.wait(pause)
    log.info("worker_stopped", worker=name)


# --- what `worker --list` shows ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScheduleLine:
    job: str
    #: The plan's code, or "" for a site-wide job.
    scope: str
    zone: str
    summary: str
    #: The next instant it will run (a retry's, a pending run's, or the calendar's next); None
    #: while a worker holds it.
    next_run_at: datetime | None
    running_since: datetime | None
    running_on: str | None
    last_run_at: datetime | None
    last_state: str | None
    last_outcome: str | None
    #: Attempts of the run still to do (0: none failed).
    failed_attempts: int


def schedule_table(ctx: ServiceContext) -> list[ScheduleLine]:
    """Every job of every plan and of the site: when it runs next, and how it went last time."""
    with ctx.reading() as session:
        now = ctx.clock.now()
        lines = []
        for entry in job_scopes(session):
            where = (ScheduledRun.job == entry.job.name, ScheduledRun.scope == entry.scope)
            open_run = session.scalars(
                select(ScheduledRun)
                .where(*where, ScheduledRun.state.in_(OPEN_STATES))
                .order_by(ScheduledRun.due_at)
                .limit(1)
            ).first()
            last = session.scalars(
                select(ScheduledRun)
                .where(*where, ScheduledRun.finished_at.is_not(None))
                .order_by(ScheduledRun.finished_at.desc(), ScheduledRun.id.desc())
                .limit(1)
            ).first()
            running = open_run is not None and open_run.state == RUNNING
            if open_run is None:
                after = now if entry.not_before is None else max(now, entry.not_before)
                next_run: datetime | None = next_due(entry.job.trigger, entry.calendar, after)
            elif running:
                next_run = None
            else:
                next_run = open_run.next_attempt_at
            lines.append(
                ScheduleLine(
                    job=entry.job.name,
                    scope=entry.scope,
                    zone=entry.calendar.zone.key,
                    summary=entry.job.summary,
                    next_run_at=next_run,
                    running_since=open_run.started_at if running and open_run else None,
                    running_on=open_run.lease_owner if running and open_run else None,
                    last_run_at=last.finished_at if last else None,
                    last_state=last.state if last else None,
                    last_outcome=(
                        (last.outcome or f"{last.error_code}: {last.error_message}")
                        if last
                        else None
                    ),
                    failed_attempts=(
                        open_run.attempts if open_run and open_run.state == FAILED else 0
                    ),
                )
            )
        return lines
