"""FastAPI adapter code the JSON API and the web pages share: the service context of a request.

Both `api` and `web` import this module; neither imports the other for it (the import-graph test,
tests/unit/test_import_graph.py, keeps it so).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mutualaid.services.context import ServiceContext


def service_context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


Context = Annotated[ServiceContext, Depends(service_context)]
