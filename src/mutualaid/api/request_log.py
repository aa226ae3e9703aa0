"""The first thing every request meets: its request id, its log line and its metrics.

A plain ASGI middleware (outermost of ours), so that:
- the request id (a sane incoming X-Request-ID, else a new one) is bound into structlog's context
  variables before anything else runs: every log line written while the request is served, in
  the services too (a worker thread copies the context), carries `request_id`; the id is echoed
  in the X-Request-ID response header;
- when the direct peer is a trusted proxy, the scheme it received (X-Forwarded-Proto) becomes the
  request's, so Secure cookies and HSTS follow the client's TLS (adapters.TrustedProxies);
- once the answer is sent, one line is logged (method, route template, status, duration_ms) and
  the request is counted by route template, never by raw path, so no id reaches a label
  ("unrouted": refused by a middleware before routing, or no such route).
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.datastructures import MutableHeaders
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mutualaid.adapters import TrustedProxies
from mutualaid.api.health import PROBE_ROUTES
from mutualaid.metrics import record_request

REQUEST_ID_HEADER = "X-Request-ID"
#: What an incoming id may be (a UUID, a proxy's hex id, a trace id): anything else is replaced.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")
UNROUTED = "unrouted"
#: Methods counted by name; any other (a client may send any token) is counted as "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def request_id_from(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            incoming: str = value.decode("latin-1")
            if SANE_REQUEST_ID.fullmatch(incoming):
                return incoming
            break
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """The path template of the route that answered ("/api/v1/claims/{ref}"), or "unrouted" for
    an answer given before routing (a middleware's 413, 422 or 429) or by no route (404)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNROUTED
    return f"{path}/{{path}}" if isinstance(route, Mount) else path


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = request_id_from(scope)
        if self.proxies:
            peer = scope["client"][0] if scope.get("client") else None
            proto = dict(scope["headers"]).get(b"x-forwarded-proto", b"").decode("latin-1")
            scope["scheme"] = self.proxies.scheme(peer, proto, scope["scheme"])
        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500  # unless an answer starts: an exception the server answers with a 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            _log_request(scope, status, time.perf_counter() - start)
            # Left bound: the server's 500 handler, outside this middleware, logs the error with
            # the id. The binding ends with the request's task (uvicorn runs each in its own).
            raise
        _log_request(scope, status, time.perf_counter() - start)
        structlog.contextvars.reset_contextvars(**tokens)


def _log_request(scope: Scope, status: int, seconds: float) -> None:
    route = route_template(scope)
    method = scope["method"] if scope["method"] in METHODS else "other"
    record_request(method, route, status, seconds)
    # Looked up per request, not at import: it follows configure_logging.
    log = structlog.get_logger("mutualaid.http")
    (log.debug if route in PROBE_ROUTES else log.info)(
        "request", method=method, route=route, status=status, duration_ms=round(seconds * 1000, 1)
    )
