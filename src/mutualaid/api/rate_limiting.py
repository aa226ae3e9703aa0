"""The middleware that applies services/accounts/rate_limits.py to every mutating request (API and
web). A plain ASGI middleware: it reads only the headers, so the body streams on to the body limit
and NUL checks untouched."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from mutualaid.adapters import client_address
from mutualaid.api.errors import send_refusal
from mutualaid.services.accounts.rate_limits import count_request
from mutualaid.services.context import ServiceContext
from mutualaid.web.sessions import SESSION_COOKIE

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _token(connection: HTTPConnection) -> str | None:
    scheme, _, credentials = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    return connection.cookies.get(SESSION_COOKIE)


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, ctx: ServiceContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limits = self.ctx.rate_limits
        if (
            scope["type"] == "http"
            and scope["method"] in MUTATING
            # With both limits off there is nothing to count: no hop to the thread pool.
            and (limits.per_address or limits.per_token)
        ):
            connection = HTTPConnection(scope)
            address = client_address(connection)
            refusal = await run_in_threadpool(count_request, self.ctx, _token(connection), address)
            if refusal is not None:
                await send_refusal(
                    send,
                    429,
                    "rate_limited",
                    f"too many requests: try again in {refusal.retry_after_s} seconds",
                    ((b"retry-after", str(refusal.retry_after_s).encode()),),
                )
                return
        await self.app(scope, receive, send)
