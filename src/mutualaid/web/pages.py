"""Public pages. The full member, juror and operator web app grows here."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from mutualaid.api.dependencies import Context
from mutualaid.domain.money import format_yuan
from mutualaid.services.plans import list_plans

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.filters["yuan"] = lambda fen: format_yuan(fen, symbol=True, grouping=True)

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, ctx: Context) -> HTMLResponse:
    return templates.TemplateResponse(request, "home.html", {"plans": list_plans(ctx)})
