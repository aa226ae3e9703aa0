"""The worker's runs: one row per (job, scope, due instant), its lease and its outcome."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mutualaid.db.models.base import Base, Id, UtcDateTime

#: The scope of a job that runs once for the whole site (not per plan).
SITE_SCOPE = ""


class ScheduledRun(Base):
    """A due instant of a scheduled job (domain/schedule.py), created once by whichever worker
    sees it first (UNIQUE(job, scope, due_at)), then leased by one worker at a time.

    States: pending (due, not started), running (leased until `lease_until`; past it, another
    worker takes it over), succeeded, failed (tried again at `next_attempt_at`), superseded (a
    newer instant of a job that only needs its latest run). Errors hold a code and a short
    message, never personal data.
    """

    __tablename__ = "scheduled_runs"
    __table_args__ = (
        UniqueConstraint("job", "scope", "due_at"),
        Index("ix_scheduled_runs_state", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    job: Mapped[str] = mapped_column(String(40))
    #: The plan's code, or SITE_SCOPE for a site-wide job.
    scope: Mapped[str] = mapped_column(String(50))
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    state: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: What the last attempt did, in a line ("3 now covered, 0 aged out").
    outcome: Mapped[str | None] = mapped_column(String(300))
    error_code: Mapped[str | None] = mapped_column(String(60))
    error_message: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
