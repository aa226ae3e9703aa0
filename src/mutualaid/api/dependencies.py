"""Request-scoped dependencies: the service context and the authenticated actor."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mutualaid.adapters import Context as Context
from mutualaid.adapters import service_context as service_context
from mutualaid.domain.errors import Unauthenticated
from mutualaid.services.accounts.accounts import Actor, BearerToken, authenticate

_bearer = HTTPBearer(auto_error=False, description="A token from POST /api/v1/sessions")


def current_actor(
    ctx: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    if credentials is None:
        raise Unauthenticated(
            "not_authenticated", "log in first: send Authorization: Bearer <token>"
        )
    return authenticate(ctx, credentials.credentials)


CurrentActor = Annotated[Actor, Depends(current_actor)]


async def bearer_caller(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> BearerToken:
    """The caller's token, checked by the service itself in its first read (joins and votes).

    async, as it does no I/O: a sync dependency costs a hop to the thread pool and back."""
    if credentials is None:
        raise Unauthenticated(
            "not_authenticated", "log in first: send Authorization: Bearer <token>"
        )
    return BearerToken(credentials.credentials)


BearerCaller = Annotated[BearerToken, Depends(bearer_caller)]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key", description="Retries with the same key act once", max_length=200
    ),
]
