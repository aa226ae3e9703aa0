"""The first thing every request meets: its request id, its log line and its metrics.

A plain ASGI middleware (outermost of ours), so that:
- the request id (a sane incoming X-Request-ID, else a new one) is bound into structlog's context
  variables before anything else runs: every log line written while the request is served, in
  the services too (a worker thread copies the context), carries `request_id`; the id is echoed
  in the X-Request-ID response header;
- when the direct peer is a trusted proxy, the scheme it received (X-Forwarded-Proto) becomes the
  request's, so Secure cookies and HSTS follow the client's TLS (adapters.TrustedProxies);
- once the answer is sent, one line is logged (method, route template, status, duration_ms) and
  the request is counted by route template, never by raw path, so no id reaches a label. A
  request refused by a middleware before routing (413, a NUL, 429) is labelled with the template
  of the route it was meant for, found by matching the app's routes; only a path no route
  matches is labelled "unrouted" (its raw path would give every scanner's guess a series).
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.datastructures import MutableHeaders
from starlette.routing import Mount, Route, Router
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


def route_template(scope: Scope, router: Router | None = None) -> str:
    """The path template of the route that answered ("/api/v1/claims/{ref}"); for an answer
    given before routing (a middleware's 413, 422 or 429), of the route `router` would have
    picked; "unrouted" when no route matches the path (404)."""
    route = scope.get("route")
    if route is None:
        return (_matching_route(scope, router) if router else None) or UNROUTED
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNROUTED
    return f"{path}/{{path}}" if isinstance(route, Mount) else path


def _matching_route(scope: Scope, router: Router) -> str | None:
    """The template of the route the router would pick for `scope`'s method and path: the first
    whose path and method match, else the first whose path matches (a 405)."""
    path, method = scope["path"], scope["method"]
    partial = None
    for pattern, methods, template in _templates(router):
        if pattern.match(path):
            if methods is None or method in methods:
                return template
            partial = partial or template
    return partial


def _templates(router: Router) -> list[tuple[re.Pattern[str], frozenset[str] | None, str]]:
    """Every route as (path pattern, methods or None for any, template), included routers
    flattened (FastAPI wraps each in an object of its own whose routes it matches itself)."""
    found: list[tuple[re.Pattern[str], frozenset[str] | None, str]] = []
    for route in router.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if callable(contexts):
            for context in contexts():
                methods = getattr(context, "methods", None)
                found.append(
                    (
                        context.path_regex,
                        frozenset(methods) if methods else None,
                        context.path_format,
                    )
                )
        elif isinstance(route, Mount):
            found.append((route.path_regex, None, f"{route.path}/{{path}}"))
        elif isinstance(route, Route):
            found.append((route.path_regex, frozenset(route.methods or ()) or None, route.path))
    return found


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, proxies: TrustedProxies, router: Router | None = None) -> None:
        self.app = app
        self.proxies = proxies
        self.router = router

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
            _log_request(scope, status, time.perf_counter() - start, self.router)
            # Left bound: the server's 500 handler, outside this middleware, logs the error with
            # the id. The binding ends with the request's task (uvicorn runs each in its own).
            raise
        _log_request(scope, status, time.perf_counter() - start, self.router)
        structlog.contextvars.reset_contextvars(**tokens)


def _log_request(scope: Scope, status: int, seconds: float, router: Router | None) -> None:
    route = route_template(scope, router)
    method = scope["method"] if scope["method"] in METHODS else "other"
    record_request(method, route, status, seconds)
    # Looked up per request, not at import: it follows configure_logging.
    log = structlog.get_logger("mutualaid.http")
    (log.debug if route in PROBE_ROUTES else log.info)(
        "request", method=method, route=route, status=status, duration_ms=round(seconds * 1000, 1)
    )
