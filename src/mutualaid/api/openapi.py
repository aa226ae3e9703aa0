"""What the OpenAPI document promises an integrator, shared by every router.

Each route names its `operation_id` (`<tag>-<verb>`, e.g. ``claims-decide``) explicitly, so
renaming a Python function never changes it; its `responses` are one `ok(...)` (or `raw(...)`)
joined with one of the error sets below, every error with the real body (schemas.ErrorBody).

    @router.post("/claims/{ref}/decision", operation_id="claims-decide", response_model=None,
                 responses=ok(ClaimView) | WRITE)

`ok` documents a service's dataclass without making FastAPI validate the answer again (the
route keeps `response_model=None`: the JSON stays what it was, and no second pass costs CPU).

Mutations (POST, PUT, PATCH, DELETE) take the `Idempotency-Key` header: either the route passes
it to its service, which answers a retry with the first answer (dependencies.IdempotencyKey), or
the operation is idempotent by itself and declares the header with `dependencies=[SAFE_TO_RETRY]`,
its description saying why a retry changes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header

from mutualaid.api.schemas import ErrorBody

Responses = dict[int | str, dict[str, Any]]

ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Refused by a rule (the `code` says which, the `field` what to change)",
    401: "Not logged in, or the token has expired (`WWW-Authenticate: Bearer`)",
    403: "Logged in, but the role (or relation to the subject) does not allow it",
    404: "No such plan, membership, claim, period or other named object",
    409: (
        "Collides with the current state (already done, not in the right state), or the "
        "`Idempotency-Key` was used before for a different request"
    ),
    413: "The request body is over the limit (1 MB; 20 MB for evidence)",
    422: (
        "A field is missing or malformed (`invalid_request`: `field` names it, `problems` lists "
        "every one), or text contains the NUL character"
    ),
    429: "Too many requests; `Retry-After` says in how many seconds to try again",
    503: "A gateway the plan depends on (SMS, payments) did not take the request: try again later",
}


def errors(*statuses: int) -> Responses:
    return {
        status: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[status]}
        for status in statuses
    }


#: Public reads (no login).
PUBLIC_READ = errors(400, 404, 422)
#: Reads that need a bearer token.
READ = errors(400, 401, 403, 404, 422)
#: Mutations that need a bearer token (every mutation is counted by the rate limits).
WRITE = errors(400, 401, 403, 404, 409, 413, 422, 429)
#: Mutations without a login (registering, logging in).
PUBLIC_WRITE = errors(400, 401, 403, 409, 413, 422, 429)


def ok(model: Any, status: int = 200, description: str = "Done") -> Responses:
    """The success answer: `model` (a dataclass, a pydantic model, a list of them) as JSON."""
    return {status: {"model": model, "description": description}}


def raw(media_types: tuple[str, ...], description: str, *, binary: bool = False) -> Responses:
    """A 200 answer that is not JSON we build: a file, a CSV, a signed note, a proof document."""
    schema: dict[str, Any] = (
        {"type": "string", "format": "binary"} if binary else {"type": "string"}
    )
    return {
        200: {
            "description": description,
            "content": {media_type: {"schema": schema} for media_type in media_types},
        }
    }


def json_document(description: str) -> Responses:
    """A 200 answer that is a JSON document with its own versioned format (a proof file)."""
    return {
        200: {
            "description": description,
            "content": {"application/json": {"schema": {"type": "object", "properties": {}}}},
        }
    }


NO_CONTENT: Responses = {204: {"description": "Done; no body"}}


async def _safe_to_retry(
    _key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description=(
                "Accepted, not stored: retrying this operation is safe by itself (its "
                "description says what a retry does)"
            ),
            max_length=200,
        ),
    ] = None,
) -> None:
    """Declares the header on a mutation that needs no key (async: no thread pool hop)."""


SAFE_TO_RETRY = Depends(_safe_to_retry)
