"""The web app: every page router, and the static files (vendored, nothing fetched at run time)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from mutualaid.adapters import error_body
from mutualaid.domain.errors import NotFound
from mutualaid.web import (
    claims,
    juries,
    members,
    messages,
    payments,
    payouts,
    public,
    reports,
    risk,
    second_factors,
    simulations,
    staff,
    staff_search,
    wind_down,
)
from mutualaid.web.pages import SECURITY_HEADERS, WEB_DIR, error_page
from mutualaid.web.sessions import page_state

router = APIRouter()
for module in (
    public,
    members,
    messages,
    payments,
    second_factors,
    claims,
    juries,
    staff,
    staff_search,
    payouts,
    reports,
    simulations,
    risk,
    wind_down,
):
    router.include_router(module.router)


def mount_static(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> FileResponse:
    return FileResponse(
        WEB_DIR / "static" / "favicon.ico",
        media_type="image/x-icon",
        headers={"Cache-Control": "public, max-age=86400"},
    )


def wants_html(request: Request) -> bool:
    """A browser asking for a page (Accept: text/html), not an API client (JSON, or */*)."""
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get(
        "accept", ""
    )


def install_not_found_page(app: FastAPI) -> None:
    """Unknown paths: a page in the reader's language for browsers, the JSON error for API
    clients. (A 404 raised by a page's own handler is already a page: pages.PageRoute.)"""

    def not_found(request: Request, error: Exception) -> Response:
        detail = error.detail if isinstance(error, StarletteHTTPException) else "Not Found"
        if not wants_html(request):
            return JSONResponse(error_body("not_found", str(detail)), status_code=404)
        page = page_state(request, request.app.state.ctx)
        response = error_page(request, NotFound("not_found", "there is no such page"))
        page.apply_cookies(response)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    app.add_exception_handler(404, not_found)
