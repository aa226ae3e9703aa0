"""FastAPI adapter code the JSON API and the web pages share: the service context of a request and
the bound on every integer a request carries.

Both `api` and `web` import this module; neither imports the other for it (the import-graph test,
tests/unit/test_import_graph.py, keeps it so).
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Interval
from fastapi import Depends, Request

from mutualaid.services.context import ServiceContext


def service_context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


Context = Annotated[ServiceContext, Depends(service_context)]


INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

#: An integer beyond a 64-bit column (ids, cursors, amounts, log indexes) used to reach the database
#: or the log code and fail there with a 500; `Int64` refuses it as a 422 naming the field.
Int64 = Annotated[int, Interval(ge=INT64_MIN, le=INT64_MAX)]


def parse_int64(text: str) -> int:
    """A form field as a 64-bit integer; ValueError (as `int` raises) when it is not one."""
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{text[:30]} is beyond a 64-bit integer")
    return value
