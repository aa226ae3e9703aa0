"""What an operator watches: is the service ready, and the database's figures for /metrics.

`readiness` answers /readyz: the database answers, its schema is at the newest migration, and the
log's signing key loads. `MonitoringCache` holds one `Snapshot` of the database figures for a few
seconds (MUTUALAID_METRICS_CACHE_S), so that however often and by however many scrapers /metrics
is read, each server process asks the database at most once per period (db/queries/monitoring.py
says what each figure costs).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from alembic.script import ScriptDirectory
from sqlalchemy.exc import SQLAlchemyError

from mutualaid.db.queries import monitoring as queries
from mutualaid.db.schema import alembic_config, current_revision
from mutualaid.services.context import ServiceContext
from mutualaid.services.transparency.checkpoints import load_log_config
from mutualaid.services.transparency.log import LogError
from mutualaid.settings import Settings


@cache
def head_revision() -> str | None:
    """The newest migration this code ships (read once per process)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def readiness(ctx: ServiceContext, settings: Settings | None) -> dict[str, str]:
    """What keeps the service from serving, by check ("database", "migrations",
    "log_signing_key"); empty when it is ready. The reasons name no secret and no address."""
    missing: dict[str, str] = {}
    try:
        revision = current_revision(ctx.engine)
    except SQLAlchemyError as error:
        missing["database"] = f"the database does not answer ({type(error).__name__})"
    else:
        head = head_revision()
        if revision != head:
            missing["migrations"] = (
                f"the schema is at {revision or 'nothing (an empty database)'}, the code needs "
                f"{head}: run `mutualaid db upgrade`"
            )
    if settings is None:
        missing["log_signing_key"] = "the server was started without its settings"
    else:
        try:
            load_log_config(settings)
        except LogError as error:
            missing["log_signing_key"] = error.message
        except OSError as error:
            missing["log_signing_key"] = f"the log key file cannot be read ({error.strerror})"
    return missing


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The database's figures at one instant (plans named by code)."""

    members: list[tuple[str, str, int]]
    claims: list[tuple[str, str, int]]
    pending_notifications: int
    log_size: int
    unsequenced_leaves: int
    #: When the newest published checkpoint was published (None before the first).
    checkpoint_published_at: datetime | None
    checkpoint_size: int
    #: Messages whose tries are spent (`mutualaid notifications dead-letters`).
    dead_notifications: int = 0


def take_snapshot(ctx: ServiceContext) -> Snapshot:
    with ctx.reading() as session:
        codes = queries.plan_codes(session)
        checkpoint = queries.last_published_checkpoint(session)
        return Snapshot(
            members=[
                (codes.get(plan_id, str(plan_id)), state, count)
                for plan_id, state, count in queries.memberships_by_state(session)
            ],
            claims=[
                (codes.get(plan_id, str(plan_id)), state, count)
                for plan_id, state, count in queries.claims_by_state(session)
            ],
            pending_notifications=queries.pending_notifications(session),
            log_size=queries.log_size(session),
            unsequenced_leaves=queries.unsequenced_leaves(session),
            checkpoint_published_at=checkpoint[1] if checkpoint else None,
            checkpoint_size=checkpoint[0] if checkpoint else 0,
            dead_notifications=queries.dead_notifications(session),
        )


class MonitoringCache:
    """One process's latest Snapshot, taken again once it is older than `ttl_s` (one scrape at
    a time takes it; the others wait for it rather than asking the database too)."""

    def __init__(self, ttl_s: float = 30) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._taken = 0.0

    def get(self, ctx: ServiceContext) -> Snapshot:
        with self._lock:
            if self._snapshot is None or time.monotonic() - self._taken >= self.ttl_s:
                self._snapshot = take_snapshot(ctx)
                self._taken = time.monotonic()
            return self._snapshot
