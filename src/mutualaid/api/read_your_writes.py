"""Reading your own write when reads may go to a read replica (db/replica.py).

Only with a replica configured (MUTUALAID_READ_DATABASE_URL); without one this middleware passes
requests straight through. With one:

- a request that writes (POST, PUT, PATCH, DELETE) reads from the primary only;
- its successful answer (below 400: a page's 303 included) carries a cookie with the primary's
  WAL position just after the write; the browser (or any HTTP client that keeps cookies) sends it
  back, and that client's reads go to the replica only once the replica has replayed that far.
  The cookie holds no secret (a WAL position) and lives `SEEN_LSN_MAX_AGE_S`: far longer than any
  healthy replica lags.
"""

from __future__ import annotations

from http.cookies import SimpleCookie

import anyio.to_thread
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mutualaid.db.replica import current_wal_lsn, parse_lsn, request_scope
from mutualaid.services.context import ServiceContext, autocommit_engine

SEEN_LSN_COOKIE = "mutualaid_seen_lsn"
SEEN_LSN_MAX_AGE_S = 600
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _cookie(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"cookie":
            morsel = SimpleCookie(value.decode("latin-1")).get(SEEN_LSN_COOKIE)
            if morsel is not None:
                return parse_lsn(morsel.value)
    return None


class ReadYourWritesMiddleware:
    def __init__(self, app: ASGIApp, ctx: ServiceContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.ctx.replica is None:
            await self.app(scope, receive, send)
            return
        writes = scope["method"] in WRITES
        primary = autocommit_engine(self.ctx.engine)

        async def send_position(message: Message) -> None:
            if message["type"] == "http.response.start" and writes and message["status"] < 400:
                # The answer starts after the request's transaction has committed.
                lsn = await anyio.to_thread.run_sync(current_wal_lsn, primary)
                if lsn is not None:
                    secure = "; Secure" if scope.get("scheme") == "https" else ""
                    MutableHeaders(scope=message).append(
                        "set-cookie",
                        f"{SEEN_LSN_COOKIE}={lsn}; Max-Age={SEEN_LSN_MAX_AGE_S}; Path=/; "
                        f"HttpOnly; SameSite=Lax{secure}",
                    )
            await send(message)

        with request_scope(_cookie(scope), primary_only=writes):
            await self.app(scope, receive, send_position)
