"""Request body limits, enforced as the body streams in and before any route (or login) runs.

A client that announces too much (Content-Length) is refused at once; one that streams without
announcing is cut off at the limit. Either way it gets a 413 with the usual error body, and the
application never reads more than the limit.
"""

from __future__ import annotations

import re

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mutualaid.api.errors import send_refusal

MB = 1024 * 1024
#: Forms and JSON bodies: a plan's TOML is the largest legitimate one (a few KB).
DEFAULT_LIMIT = 1 * MB
#: Evidence uploads: 20 MB of file plus room for the multipart envelope and the other fields.
EVIDENCE_LIMIT = 20 * MB + 64 * 1024
ROUTE_LIMITS: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"^(/api/v1)?/claims/[^/]+/evidence$"), EVIDENCE_LIMIT),
)


def limit_for(path: str) -> int:
    for pattern, limit in ROUTE_LIMITS:
        if pattern.match(path):
            return limit
    return DEFAULT_LIMIT


class BodyTooLarge(HTTPException):
    """Raised inside receive() once the streamed body passes the limit.

    An HTTPException, so that FastAPI's body parsing passes it through (it turns other errors into
    a 400) and the error handlers answer it as a 413.
    """

    error_code = "body_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit // 1024} KB")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _refuse(send, limit)
            return
        seen = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await _refuse(send, limit)


async def _refuse(send: Send, limit: int) -> None:
    await send_refusal(
        send, 413, "body_too_large", BodyTooLarge(limit).detail, ((b"connection", b"close"),)
    )
