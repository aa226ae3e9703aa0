"""Plan files by their SHA-256 (issue 14): the exact bytes a plan_version leaf names, so that an
auditor can check which rules were in force. Public, read-only, immutable."""

from __future__ import annotations

from fastapi import APIRouter, Response

from mutualaid.api.dependencies import Context
from mutualaid.api.openapi import PUBLIC_READ, raw
from mutualaid.services.plans.plans import plan_file

router = APIRouter(prefix="/api/v1/plan-files", tags=["plans"])

_IMMUTABLE = "public, max-age=31536000, immutable"


@router.get(
    "/{sha256}",
    operation_id="plans-file",
    response_class=Response,
    responses=raw(("application/toml",), "The plan file, byte for byte") | PUBLIC_READ,
)
def get_plan_file(sha256: str, ctx: Context) -> Response:
    """The plan file whose SHA-256 is `sha256`, byte for byte."""
    return Response(
        plan_file(ctx, sha256),
        media_type="application/toml",
        headers={"Cache-Control": _IMMUTABLE, "ETag": f'"{sha256}"'},
    )
