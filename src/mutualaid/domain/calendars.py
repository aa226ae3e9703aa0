"""Calendar arithmetic on plain dates: ages, birthdays, instants at midnight in a plan's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo


def anniversary(birth_on: date, years: int) -> date:
    """The date a person born on `birth_on` turns `years` old.

    Someone born on 29 February turns a year older on 1 March in common years (the day after
    28 February has passed), the usual reading of age in Chinese and most civil law.
    """
    try:
        return birth_on.replace(year=birth_on.year + years)
    except ValueError:
        return date(birth_on.year + years, 3, 1)


def age_in_years(birth_on: date, on: date) -> int:
    years = on.year - birth_on.year
    if anniversary(birth_on, years) > on:
        years -= 1
    return years


def age_in_days(birth_on: date, on: date) -> int:
    return (on - birth_on).days


def local_date(instant: datetime, zone: ZoneInfo) -> date:
    if instant.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    return instant.astimezone(zone).date()


def start_of_day(day: date, zone: ZoneInfo) -> datetime:
    """00:00 of `day` in `zone`, as an aware UTC instant."""
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)
