"""Registering and logging in."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from mutualaid.adapters import client_address
from mutualaid.api.dependencies import Context, CurrentActor
from mutualaid.api.openapi import NO_CONTENT, PUBLIC_WRITE, READ, SAFE_TO_RETRY, WRITE, ok
from mutualaid.domain.accounts import MAX_DISPLAY_NAME_LENGTH, MIN_PASSWORD_LENGTH
from mutualaid.services.accounts.accounts import (
    AccountView,
    get_account,
    log_out,
    register_account,
)
from mutualaid.services.accounts.phone_codes import send_first_code
from mutualaid.services.accounts.rate_limits import check_registration
from mutualaid.services.accounts.second_factors import sign_in

router = APIRouter(prefix="/api/v1", tags=["accounts"])


class Registration(BaseModel):
    phone: str = Field(examples=["13800138000"])
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=200)
    display_name: str | None = Field(default=None, max_length=MAX_DISPLAY_NAME_LENGTH)
    locale: str = Field(default="zh_CN", pattern="^(zh_CN|en)$")
    #: Needed only for a phone an operator imported: the code from that import.
    invitation: str | None = Field(default=None, max_length=100)
    #: Send the SMS code that proves the phone at once (POST /me/phone/verify takes it).
    send_code: bool = True


class Credentials(BaseModel):
    phone: str
    password: str = Field(max_length=200)
    #: Staff: the authenticator code (or a recovery code) with the password, in one call.
    code: str | None = Field(default=None, max_length=40)


class Session(BaseModel):
    token: str
    token_type: str = "bearer"
    expires_at: datetime
    account: dict[str, Any]


@router.post(
    "/accounts",
    operation_id="accounts-register",
    status_code=status.HTTP_201_CREATED,
    response_model=None,
    responses=ok(AccountView, 201, "Registered") | PUBLIC_WRITE,
    dependencies=[SAFE_TO_RETRY],
)
def register(body: Registration, ctx: Context, request: Request) -> AccountView:
    """Register, or bind an imported account with its invitation code. Limited per phone and per
    address per hour (429 `registration_rate_limited`, with Retry-After).

    Safe to retry: a phone registers once, so a retry after success is refused (409) and
    creates no second account. The SMS code that proves the phone goes out at once (unless
    `send_code` is false); if it could not (throttled, gateway down), ask again at
    POST /me/phone/code."""
    address = client_address(request)
    check_registration(ctx, body.phone, address)
    view = register_account(
        ctx,
        body.phone,
        body.password,
        display_name=body.display_name,
        locale=body.locale,
        invitation=body.invitation,
    )
    if body.send_code:
        send_first_code(ctx, view.id, address)
    return view


@router.post(
    "/sessions",
    operation_id="accounts-log-in",
    status_code=status.HTTP_201_CREATED,
    responses=PUBLIC_WRITE,
    dependencies=[SAFE_TO_RETRY],
)
def create_session(body: Credentials, ctx: Context, request: Request) -> Session:
    """Log in for a bearer token. Failed attempts are limited per phone and per address (429).

    Staff also send `code` from their authenticator (or a recovery code); without it the answer
    is 401 `second_factor_required` (or `second_factor_enrolment_required`: enrol on the web).

    Safe to retry: a retry issues another token and changes nothing else."""
    issued = sign_in(ctx, body.phone, body.password, body.code, client_address(request))
    return Session(token=issued.token, expires_at=issued.expires_at, account=asdict(issued.account))


@router.delete(
    "/sessions/current",
    operation_id="accounts-log-out",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=NO_CONTENT | WRITE,
    dependencies=[SAFE_TO_RETRY],
)
def delete_session(
    ctx: Context,
    _: CurrentActor,
    credentials: Annotated[HTTPAuthorizationCredentials, Depends(HTTPBearer())],
) -> None:
    """Revoke the token. Safe to retry: a revoked token is refused (401), nothing changes."""
    log_out(ctx, credentials.credentials)


@router.get(
    "/me", operation_id="accounts-me", response_model=None, responses=ok(AccountView) | READ
)
def me(ctx: Context, actor: CurrentActor) -> AccountView:
    return get_account(ctx, actor.account_id)
