"""Every error answers JSON naming the field: {"error": {"code", "message", "field"}}. No stack traces."""

from __future__ import annotations

import json

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

from mutualaid.adapters import error_body
from mutualaid.domain.errors import DomainError


async def send_refusal(
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """Answer with the usual error body straight from an ASGI middleware (before any route)."""
    body = json.dumps(error_body(code, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, error: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        if error.status == 429 and "retry_after_s" in error.details:
            headers = {"Retry-After": str(error.details["retry_after_s"])}
        return JSONResponse(
            error_body(**error.as_dict()), status_code=error.status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for item in error.errors():
            location = [
                str(part) for part in item["loc"] if part not in ("body", "query", "path", "header")
            ]
            problems.append({"field": ".".join(location) or None, "message": item["msg"]})
        first = problems[0] if problems else {"field": None, "message": "invalid request"}
        return JSONResponse(
            error_body(
                "invalid_request",
                f"{first['field']}: {first['message']}",
                first["field"],
                problems=problems,
            ),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        # Our middlewares' refusals (limits.py, nul.py) name their own code.
        code = getattr(error, "error_code", None) or {
            404: "not_found",
            405: "method_not_allowed",
        }.get(error.status_code, "http_error")
        return JSONResponse(error_body(code, str(error.detail)), status_code=error.status_code)

    # Not async: Starlette runs a plain handler in a worker thread, so formatting and writing the
    # traceback never holds the event loop (and every other request of this worker).
    @app.exception_handler(Exception)
    def _unexpected(request: Request, error: Exception) -> JSONResponse:
        # Looked up per call, not cached at import: it follows configure_logging.
        # (exc_info is passed: a worker thread has no "current" exception.)
        structlog.get_logger().error("unhandled_error", path=request.url.path, exc_info=error)
        # This answer is sent by Starlette's outermost middleware, outside the one that echoes
        # the request id; the id is still bound (api/request_log.py), so it goes on here.
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        return JSONResponse(
            error_body("internal_error", "something went wrong on our side; nothing was changed"),
            status_code=500,
            headers={"X-Request-ID": str(request_id)} if request_id else None,
        )
