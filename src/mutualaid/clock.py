"""Time comes from a Clock so tests can move it; the domain only ever receives instants."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class FixedClock:
    """A clock that stands still until a test moves it."""

    instant: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))

    def now(self) -> datetime:
        return self.instant

    def advance(self, delta: timedelta) -> None:
        self.instant += delta

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("instants must be timezone-aware")
        self.instant = instant
