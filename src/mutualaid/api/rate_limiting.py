"""The middleware that applies services/accounts/rate_limits.py to every mutating request (API and web)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from mutualaid.api.errors import error_body
from mutualaid.services.accounts.rate_limits import count_request
from mutualaid.services.context import ServiceContext
from mutualaid.web.sessions import SESSION_COOKIE

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _token(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    return request.cookies.get(SESSION_COOKIE)


def install_rate_limits(app: FastAPI, ctx: ServiceContext) -> None:
    @app.middleware("http")
    async def _limit(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.method in MUTATING:
            # As given: behind a reverse proxy this is the proxy (trusted proxies come later).
            address = request.client.host if request.client else "unknown"
            refusal = await run_in_threadpool(count_request, ctx, _token(request), address)
            if refusal is not None:
                return JSONResponse(
                    error_body(
                        "rate_limited",
                        f"too many requests: try again in {refusal.retry_after_s} seconds",
                    ),
                    status_code=429,
                    headers={"Retry-After": str(refusal.retry_after_s)},
                )
        return await call_next(request)
