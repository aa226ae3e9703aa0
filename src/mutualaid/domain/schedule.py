"""The worker's calendar as data: which job runs when, and the pure arithmetic of due instants.

Every scheduled job is one row of `JOBS`: its name, whether it runs once per plan (in the plan's
time zone, from the plan's published rules) or once for the whole site (in UTC), its trigger, and
how long a worker may hold it before another one takes it over. A trigger is one of

- `Daily(at)`: every day at `at` local time (coverage, publicity, retries);
- `MonthDays(days, at)`: on the days of the month that one of the plan's rule lists names
  (`publicity_days`: the period closes at 00:00 on the 7th and 21st; `debit_days`: its shares are
  collected on the 14th and 28th);
- `Every(interval)`: every `interval` from the Unix epoch (checkpoints, notifications, juries).

The functions below answer "which due instants fall in (after, until]" and "when is the next one";
the worker (services/scheduling/) stores one run row per (job, scope, due instant) and never decides
time by itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from mutualaid.domain.calendars import local_date
from mutualaid.domain.errors import DomainError
from mutualaid.domain.plans import PlanRules

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Calendar triggers look this many days around an instant (a month and a bit: every month has
#: each of the plan's days, which are validated to lie between 1 and 28).
_HORIZON_DAYS = 62
#: Back-off after a failed attempt: 1, 2, 4 … minutes, never more than an hour.
RETRY_FIRST = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Daily:
    at: time = time(0)


@dataclass(frozen=True, slots=True)
class MonthDays:
    #: Which of the plan's rule lists names the days.
    days: Literal["publicity_days", "debit_days"]
    at: time = time(0)


@dataclass(frozen=True, slots=True)
class Every:
    interval: timedelta


Trigger = Daily | MonthDays | Every


@dataclass(frozen=True, slots=True)
class JobKind:
    name: str
    #: True: one run per plan, in the plan's zone; False: one run for the site, in UTC.
    per_plan: bool
    trigger: Trigger
    #: Run every missed instant in order (a period closed for each publicity day the worker was
    #: down), not only the latest one (a daily job that catches up by itself).
    catch_up: bool
    #: How long a worker holds a run before another may take it over (a crashed worker's run).
    lease: timedelta
    summary: str


#: The schedule, in the order jobs due at the same instant run: coverage before the close (who is
#: covered at the lock), the close before publicity (cases approved before the lock belong to the
#: period), the log after everything that queues leaves.
JOBS: tuple[JobKind, ...] = (
    JobKind(
        "coverage",
        True,
        Daily(),
        False,
        timedelta(minutes=30),
        "waiting periods over become covered; birthdays at the exit age end",
    ),
    JobKind(
        "period_close",
        True,
        MonthDays("publicity_days"),
        True,
        timedelta(minutes=30),
        "lock, share and commit the period at 00:00 on each publicity day",
    ),
    JobKind(
        "collection",
        True,
        MonthDays("debit_days"),
        True,
        timedelta(minutes=30),
        "debit every payer's share on the period's debit day",
    ),
    JobKind(
        "retries",
        True,
        Daily(time(1)),
        False,
        timedelta(minutes=30),
        "ask again for unpaid shares; remove members past the retry days",
    ),
    JobKind(
        "publicity",
        True,
        Daily(),
        False,
        timedelta(minutes=10),
        "publish the cases due on a publicity day; approve cases whose window closed",
    ),
    JobKind(
        "juries",
        False,
        Every(timedelta(hours=1)),
        False,
        timedelta(minutes=10),
        "draw panels whose seed checkpoint is out; close votes whose window passed",
    ),
    JobKind(
        "log_checkpoint",
        False,
        Every(timedelta(minutes=5)),
        False,
        timedelta(minutes=10),
        "integrate queued leaves, sign a checkpoint, gather witness cosignatures",
    ),
    JobKind(
        "notifications",
        False,
        Every(timedelta(minutes=1)),
        False,
        timedelta(minutes=5),
        "hand unsent notifications to the outbound channel",
    ),
    JobKind(
        "prune_rate_limits",
        False,
        Daily(time(3)),
        False,
        timedelta(minutes=10),
        "delete request counters of windows that have ended",
    ),
)
JOB_NAMES: tuple[str, ...] = tuple(job.name for job in JOBS)
_BY_NAME = {job.name: job for job in JOBS}


def job_kind(name: str) -> JobKind:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise DomainError(
            "unknown_job",
            f"no scheduled job is called {name!r}",
            "job",
            details={"known": list(JOB_NAMES)},
        ) from None


@dataclass(frozen=True, slots=True)
class Calendar:
    """Where a job's instants are counted: a zone and the month days its rules name."""

    zone: ZoneInfo
    publicity_days: tuple[int, ...] = ()
    debit_days: tuple[int, ...] = ()


SITE_CALENDAR = Calendar(ZoneInfo("UTC"))


def plan_calendar(rules: PlanRules) -> Calendar:
    return Calendar(
        rules.zone, tuple(rules.periods.publicity_days), tuple(rules.periods.debit_days)
    )


def _local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _day_matches(trigger: Daily | MonthDays, calendar: Calendar, day: date) -> bool:
    if isinstance(trigger, Daily):
        return True
    return day.day in getattr(calendar, trigger.days)


def _calendar_instants(
    trigger: Daily | MonthDays, calendar: Calendar, first_day: date, last_day: date
) -> Iterator[datetime]:
    day = first_day
    while day <= last_day:
        if _day_matches(trigger, calendar, day):
            yield _local_instant(day, trigger.at, calendar.zone)
        day += timedelta(days=1)


def due_between(
    trigger: Trigger, calendar: Calendar, after: datetime, until: datetime
) -> list[datetime]:
    """The trigger's instants in (after, until], oldest first."""
    if after.tzinfo is None or until.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    if until <= after:
        return []
    if isinstance(trigger, Every):
        step = trigger.interval
        first = EPOCH + ((after - EPOCH) // step + 1) * step
        count = (until - first) // step + 1 if first <= until else 0
        return [first + n * step for n in range(count)]
    first_day = local_date(after, calendar.zone) - timedelta(days=1)
    last_day = local_date(until, calendar.zone) + timedelta(days=1)
    return [
        instant
        for instant in _calendar_instants(trigger, calendar, first_day, last_day)
        if after < instant <= until
    ]


def latest_due(trigger: Trigger, calendar: Calendar, now: datetime) -> datetime:
    """The trigger's most recent instant at or before `now`."""
    if isinstance(trigger, Every):
        return EPOCH + ((now - EPOCH) // trigger.interval) * trigger.interval
    due = due_between(trigger, calendar, now - timedelta(days=_HORIZON_DAYS), now)
    if not due:
        raise AssertionError("every trigger fires at least once a month")
    return due[-1]


def next_due(trigger: Trigger, calendar: Calendar, after: datetime) -> datetime:
    """The trigger's first instant strictly after `after`."""
    if isinstance(trigger, Every):
        return EPOCH + ((after - EPOCH) // trigger.interval + 1) * trigger.interval
    due = due_between(trigger, calendar, after, after + timedelta(days=_HORIZON_DAYS))
    if not due:
        raise AssertionError("every trigger fires at least once a month")
    return due[0]


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt: 1, 2, 4 … minutes, capped."""
    if attempts < 1:
        return timedelta(0)
    return min(RETRY_FIRST * (1 << min(attempts - 1, 20)), RETRY_CAP)


def publicity_day_of(rules: PlanRules, due_on: date, trigger: MonthDays) -> date:
    """The publicity day of the period a month-day job works on: the day itself for the close,
    the publicity day paired with the debit day for the collection."""
    if trigger.days == "publicity_days":
        return due_on
    index = rules.periods.debit_days.index(due_on.day)
    return due_on.replace(day=rules.periods.publicity_days[index])
