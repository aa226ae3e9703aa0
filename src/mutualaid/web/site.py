"""The web app: every page router, and the static files (vendored, nothing fetched at run time)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from mutualaid.web import (
    claims,
    juries,
    members,
    messages,
    public,
    reports,
    risk,
    second_factors,
    simulations,
    staff,
    wind_down,
)
from mutualaid.web.pages import WEB_DIR

router = APIRouter()
for module in (
    public,
    members,
    messages,
    second_factors,
    claims,
    juries,
    staff,
    reports,
    simulations,
    risk,
    wind_down,
):
    router.include_router(module.router)


def mount_static(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
