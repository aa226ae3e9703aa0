"""Staff search (/staff/search): a claim reference, a payer's phone or a membership id."""

from __future__ import annotations

from fastapi.responses import HTMLResponse

from mutualaid.domain.accounts import STAFF_ROLES
from mutualaid.services.claims.staff_search import staff_search
from mutualaid.web.pages import page_router, render
from mutualaid.web.sessions import Page

router = page_router()


@router.get("/staff/search")
def search(page: Page) -> HTMLResponse:
    actor = page.need(*sorted(STAFF_ROLES))
    query = page.request.query_params.get("q", "")[:100]
    hits = staff_search(page.ctx, actor, query) if query.strip() else None
    return render(page, "staff/search.html", query=query, hits=hits)
