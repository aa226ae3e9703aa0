"""/healthz, /readyz and /metrics: what a load balancer and Prometheus ask (docs/operations.md).

- /healthz: the process answers (200, nothing checked: restart it when this fails).
- /readyz: the database answers, its schema is at the newest migration, the log's signing key
  loads; 503 with `{"ready": false, "missing": {check: reason}}` otherwise (send it no traffic).
- /metrics: Prometheus text; request and job metrics from every server process
  (mutualaid.metrics), and the database's figures from one cached snapshot (services.monitoring).
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy.exc import SQLAlchemyError

from mutualaid.adapters import Context
from mutualaid.metrics import exposition
from mutualaid.services.context import ServiceContext
from mutualaid.services.monitoring import MonitoringCache, readiness
from mutualaid.settings import Settings

router = APIRouter(include_in_schema=False)

SETTINGS_STATE = "settings"
MONITORING_STATE = "monitoring"
#: Probes and scrapes, logged at debug rather than info (a probe every few seconds is noise).
PROBE_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(ctx: Context, request: Request) -> JSONResponse:
    settings: Settings | None = getattr(request.app.state, SETTINGS_STATE, None)
    missing = readiness(ctx, settings)
    if missing:
        return JSONResponse({"ready": False, "missing": missing}, status_code=503)
    return JSONResponse({"ready": True, "missing": {}})


class DatabaseCollector:
    """The database's figures as gauges, from the process's cached snapshot."""

    def __init__(self, ctx: ServiceContext, cache: MonitoringCache) -> None:
        self.ctx = ctx
        self.cache = cache

    def collect(self) -> Iterable[Metric]:
        try:
            snapshot = self.cache.get(self.ctx)
        except SQLAlchemyError:
            yield GaugeMetricFamily(
                "mutualaid_database_up", "Whether the database answered this scrape", value=0
            )
            return
        yield GaugeMetricFamily(
            "mutualaid_database_up", "Whether the database answered this scrape", value=1
        )
        members = GaugeMetricFamily(
            "mutualaid_memberships", "Memberships by plan and state", labels=["plan", "state"]
        )
        for plan, state, count in snapshot.members:
            members.add_metric([plan, state], count)
        claims = GaugeMetricFamily(
            "mutualaid_claims", "Claims by plan and state", labels=["plan", "state"]
        )
        for plan, state, count in snapshot.claims:
            claims.add_metric([plan, state], count)
        yield members
        yield claims
        yield GaugeMetricFamily(
            "mutualaid_notifications_pending",
            "Notifications the outbound channel has not taken yet",
            value=snapshot.pending_notifications,
        )
        yield GaugeMetricFamily(
            "mutualaid_notifications_dead",
            "Messages whose tries are spent, waiting for an operator to retry them",
            value=snapshot.dead_notifications,
        )
        yield GaugeMetricFamily(
            "mutualaid_log_size", "Leaves in the transparency log", value=snapshot.log_size
        )
        yield GaugeMetricFamily(
            "mutualaid_log_unsequenced_leaves",
            "Leaves queued for the log but not yet sequenced",
            value=snapshot.unsequenced_leaves,
        )
        yield GaugeMetricFamily(
            "mutualaid_log_checkpoint_size",
            "Size of the newest published checkpoint (0 before the first)",
            value=snapshot.checkpoint_size,
        )
        published = snapshot.checkpoint_published_at
        if published is not None:
            yield GaugeMetricFamily(
                "mutualaid_log_checkpoint_age_seconds",
                "Seconds since the newest checkpoint was published",
                value=(self.ctx.clock.now() - published).total_seconds(),
            )


@router.get("/metrics")
def metrics(ctx: Context, request: Request) -> Response:
    cache: MonitoringCache | None = getattr(request.app.state, MONITORING_STATE, None)
    if cache is None:
        cache = MonitoringCache()
        setattr(request.app.state, MONITORING_STATE, cache)
    body, content_type = exposition(DatabaseCollector(ctx, cache))
    return Response(body, media_type=content_type)
