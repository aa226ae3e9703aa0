"""The ASGI application. Several workers can serve it: all state lives in the database."""

from __future__ import annotations

from fastapi import FastAPI

from mutualaid import __version__
from mutualaid.adapters import TRUSTED_PROXIES_STATE, TrustedProxies
from mutualaid.api import (
    accounts,
    claims,
    health,
    juries,
    memberships,
    messages,
    payments,
    periods,
    plan_files,
    plans,
    reports,
    risk,
    transparency,
    wind_down,
)
from mutualaid.api.errors import install_error_handlers
from mutualaid.api.headers import SecurityHeadersMiddleware, install_docs
from mutualaid.api.limits import BodyLimitMiddleware
from mutualaid.api.nul import RejectNulMiddleware
from mutualaid.api.rate_limiting import RateLimitMiddleware
from mutualaid.api.read_your_writes import ReadYourWritesMiddleware
from mutualaid.api.request_log import RequestContextMiddleware
from mutualaid.logging import configure_logging
from mutualaid.services.context import ServiceContext, build_context
from mutualaid.services.monitoring import MonitoringCache
from mutualaid.settings import Settings


def create_app(ctx: ServiceContext, settings: Settings | None = None) -> FastAPI:
    """The app over `ctx`. `settings` (the server's MUTUALAID_*) name the trusted proxies, the
    log key /readyz checks and the metrics cache; without them no proxy is trusted and /readyz
    reports the log key as missing."""
    app = FastAPI(
        title="mutualaid",
        version=__version__,
        description=(
            "Run an online mutual aid plan. Money is integer fen (`*_fen`); dates are in the plan's "
            "time zone (`*_on`); instants are UTC (`*_at`). Errors are "
            '`{"error": {"code", "message", "field"}}`. Mutations accept an `Idempotency-Key` header.'
        ),
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    proxies = TrustedProxies(settings.forwarded_allow_ips if settings else "")
    setattr(app.state, TRUSTED_PROXIES_STATE, proxies)
    setattr(app.state, health.SETTINGS_STATE, settings)
    setattr(
        app.state,
        health.MONITORING_STATE,
        MonitoringCache(settings.metrics_cache_s if settings else 30),
    )
    install_error_handlers(app)
    # Innermost: which reads may go to the read replica (a no-op without one).
    app.add_middleware(ReadYourWritesMiddleware, ctx=ctx)
    app.add_middleware(RateLimitMiddleware, ctx=ctx)
    # Added later = further out: headers go on every answer, the 413 included; the request id,
    # the request's log line and its metrics wrap everything (the refusals included).
    app.add_middleware(RejectNulMiddleware)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestContextMiddleware, proxies=proxies, router=app.router)
    install_docs(app)
    # First: the vote, the busiest write (unlisted; juries.router lists it in its place).
    app.include_router(juries.hot_router)
    app.include_router(health.router)
    app.include_router(accounts.router)
    app.include_router(plans.router)
    app.include_router(plan_files.router)
    app.include_router(memberships.router)
    app.include_router(claims.router)
    app.include_router(juries.router)
    app.include_router(transparency.router)
    app.include_router(periods.router)
    app.include_router(risk.router)
    app.include_router(reports.router)
    app.include_router(wind_down.router)
    app.include_router(payments.router)
    app.include_router(messages.router)
    from mutualaid.web.site import install_not_found_page, mount_static
    from mutualaid.web.site import router as web_router

    app.include_router(web_router)
    mount_static(app)
    install_not_found_page(app)
    return app


def app_from_environment() -> FastAPI:
    """Factory for `uvicorn --factory` (each worker builds its own context from MUTUALAID_*)."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    return create_app(build_context(settings), settings)
