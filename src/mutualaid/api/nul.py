"""No NUL character enters the application as text: refused once, here, for every route.

PostgreSQL cannot store NUL in text, so a NUL in a name, a plan code or a query failed deep in the
database with a 500 (and its traceback logged the request's other fields). This middleware looks at
the decoded path, the query string and JSON or URL-encoded form bodies as they stream; multipart
bodies carry binary files and are left to the field validation of their routes.
"""

from __future__ import annotations

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mutualaid.api.errors import send_refusal

#: How a NUL is spelled in each body type we scan (raw NUL is already invalid JSON).
_BODY_MARKERS = {
    b"application/json": (b"\\u0000", b"\x00"),
    b"application/x-www-form-urlencoded": (b"%00", b"\x00"),
}
_MESSAGE = "text may not contain the NUL character"


class NulInBody(HTTPException):
    error_code = "invalid_request"

    def __init__(self) -> None:
        super().__init__(422, _MESSAGE)


class RejectNulMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").lower()
        if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
            await _refuse(send)
            return
        content_type = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip()
        markers = _BODY_MARKERS.get(content_type.lower())
        if markers is None:
            await self.app(scope, receive, send)
            return
        tail = b""

        async def scanning_receive() -> Message:
            nonlocal tail
            message = await receive()
            if message["type"] == "http.request":
                # Keep a few bytes of the previous chunk: a marker may straddle two chunks.
                window = tail + message.get("body", b"").lower()
                if any(marker in window for marker in markers):
                    raise NulInBody
                tail = window[-8:]
            return message

        await self.app(scope, scanning_receive, send)


async def _refuse(send: Send) -> None:
    await send_refusal(send, 422, "invalid_request", _MESSAGE)
