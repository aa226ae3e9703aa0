"""The worker's calendar: due instants in a plan's zone, whatever the zone of the server."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from mutualaid.domain.schedule import (
    JOB_NAMES,
    SITE_CALENDAR,
    Calendar,
    Daily,
    Every,
    MonthDays,
    due_between,
    job_kind,
    latest_due,
    next_due,
    retry_delay,
)

SHANGHAI = Calendar(ZoneInfo("Asia/Shanghai"), (7, 21), (14, 28))
MARCH = (datetime(2026, 2, 28, 16, 0, tzinfo=UTC), datetime(2026, 3, 31, 16, 0, tzinfo=UTC))


def test_publicity_days_fall_at_midnight_in_shanghai_which_is_16_utc_the_day_before() -> None:
    assert due_between(MonthDays("publicity_days"), SHANGHAI, *MARCH) == [
        datetime(2026, 3, 6, 16, 0, tzinfo=UTC),
        datetime(2026, 3, 20, 16, 0, tzinfo=UTC),
    ]


def test_debit_days_and_daily_instants_over_a_month() -> None:
    assert [
        d.astimezone(SHANGHAI.zone).day
        for d in due_between(MonthDays("debit_days"), SHANGHAI, *MARCH)
    ] == [14, 28]
    daily = due_between(Daily(time(1)), SHANGHAI, *MARCH)
    assert len(daily) == 31
    assert all(d.astimezone(SHANGHAI.zone).time() == time(1) for d in daily)


def test_an_instant_on_the_boundary_is_due_and_then_next_is_the_following_one() -> None:
    lock = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)
    trigger = MonthDays("publicity_days")
    assert latest_due(trigger, SHANGHAI, lock) == lock
    assert latest_due(trigger, SHANGHAI, lock - timedelta(seconds=1)) == datetime(
        2026, 2, 20, 16, 0, tzinfo=UTC
    )
    assert next_due(trigger, SHANGHAI, lock) == datetime(2026, 3, 20, 16, 0, tzinfo=UTC)


def test_every_counts_from_the_epoch_in_utc() -> None:
    now = datetime(2026, 3, 1, 2, 7, 30, tzinfo=UTC)
    five = Every(timedelta(minutes=5))
    assert latest_due(five, SITE_CALENDAR, now) == datetime(2026, 3, 1, 2, 5, tzinfo=UTC)
    assert next_due(five, SITE_CALENDAR, now) == datetime(2026, 3, 1, 2, 10, tzinfo=UTC)
    assert len(due_between(five, SITE_CALENDAR, now, now + timedelta(hours=1))) == 12


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    st.sampled_from(["UTC", "Asia/Shanghai", "America/New_York", "Pacific/Chatham"]),
)
def test_latest_and_next_due_bracket_any_instant(naive: datetime, zone: str) -> None:
    now = naive.replace(tzinfo=UTC)
    calendar = Calendar(ZoneInfo(zone), (7, 21), (14, 28))
    for trigger in (Daily(), MonthDays("publicity_days"), Every(timedelta(minutes=5))):
        before, after = latest_due(trigger, calendar, now), next_due(trigger, calendar, now)
        assert before <= now < after
        assert due_between(trigger, calendar, before, after) == [after]


def test_failed_runs_back_off_1_2_4_minutes_up_to_an_hour() -> None:
    assert [retry_delay(n).total_seconds() / 60 for n in range(1, 9)] == [
        1,
        2,
        4,
        8,
        16,
        32,
        60,
        60,
    ]
    assert retry_delay(1000) == timedelta(hours=1)


def test_the_close_runs_before_publicity_at_the_same_instant() -> None:
    assert JOB_NAMES.index("period_close") < JOB_NAMES.index("publicity")
    assert job_kind("period_close").catch_up and not job_kind("notifications").catch_up
