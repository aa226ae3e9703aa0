"""Messages: a member's message preferences, phone verification by SMS code, dead letters."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field

from mutualaid.adapters import Int64, client_address
from mutualaid.api.dependencies import Context, CurrentActor, IdempotencyKey
from mutualaid.api.openapi import READ, SAFE_TO_RETRY, WRITE, errors
from mutualaid.domain.accounts import Role, require_role
from mutualaid.services.accounts.phone_codes import (
    CodeSent,
    PhoneStatus,
    confirm_phone_code,
    send_phone_code,
)
from mutualaid.services.notifications import (
    DeadLetter,
    MessagePreferences,
    get_preferences,
    list_dead_letters,
    retry_dead_letters,
    set_preferences,
)

router = APIRouter(prefix="/api/v1", tags=["messages"])


class PreferencesChange(BaseModel):
    """What to change (absent: keep). An empty `email` removes the address."""

    locale: Literal["zh_CN", "en"] | None = None
    channel: str | None = Field(default=None, examples=["sms", "email", "app"])
    email: str | None = Field(default=None, max_length=254)
    #: False: only essential messages (claim decisions, failed debits, codes).
    optional: bool | None = None


class CodeRequest(BaseModel):
    #: A new phone number to move the account to (absent: prove the account's own number).
    phone: str | None = Field(default=None, max_length=20, examples=["13800138000"])


class CodeEntry(BaseModel):
    code: str = Field(min_length=1, max_length=12, examples=["123456"])


class RetryRequest(BaseModel):
    #: The dead letters to retry (absent: all of them).
    ids: list[Int64] | None = None


class RetryDone(BaseModel):
    retried: int


@router.get("/me/preferences", operation_id="preferences-get", responses=READ)
def preferences(ctx: Context, actor: CurrentActor) -> MessagePreferences:
    """Language and channel of the messages the plan sends you, and whether you want the optional
    ones."""
    return get_preferences(ctx, actor.account_id)


@router.put(
    "/me/preferences",
    operation_id="preferences-set",
    responses=WRITE,
    dependencies=[SAFE_TO_RETRY],
)
def change_preferences(
    body: PreferencesChange, ctx: Context, actor: CurrentActor
) -> MessagePreferences:
    """Errors: 400 `invalid_channel`, `invalid_email`, `email_required` (e-mail chosen without
    an address), `invalid_locale`. Safe to retry: it sets the values sent, so a retry sets the
    same ones."""
    return set_preferences(
        ctx,
        actor.account_id,
        locale=body.locale,
        channel=body.channel,
        email=body.email,
        optional=body.optional,
    )


@router.post(
    "/me/phone/code",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="phone-code-send",
    responses=WRITE | errors(503),
    dependencies=[SAFE_TO_RETRY],
)
def send_code(body: CodeRequest, ctx: Context, actor: CurrentActor, request: Request) -> CodeSent:
    """Send a 6-digit code by SMS that proves your phone (or a new one, to change it); it expires
    in 10 minutes. Errors: 409 `phone_already_verified`, `phone_taken`; 429 `phone_code_too_soon`
    (one a minute), `phone_code_rate_limited` (a few an hour per phone and per address); 503
    `phone_code_not_sent` (the SMS gateway refused). Safe to retry: within the minute a retry
    sends no second SMS (429 `phone_code_too_soon`); a later one sends a new code that replaces
    the first (only the latest code is accepted), counted by the hourly limits."""
    return send_phone_code(
        ctx, actor.account_id, new_phone=body.phone, address=client_address(request)
    )


@router.post(
    "/me/phone/verify",
    operation_id="phone-code-confirm",
    responses=WRITE,
    dependencies=[SAFE_TO_RETRY],
)
def confirm_code(body: CodeEntry, ctx: Context, actor: CurrentActor) -> PhoneStatus:
    """Enter the code: the phone is verified (and changed, for a new number). Errors: 400
    `phone_code_missing`, `phone_code_wrong` (with `tries_left`), `phone_code_expired`,
    `phone_code_exhausted` (5 wrong codes: ask for a new one); 409 `phone_taken`. Safe to
    retry: a right code is spent when it verifies the phone, so a retry is refused with 400
    `phone_code_missing` and changes nothing; a wrong code retried counts as another wrong try
    (the limit on guesses must not depend on a header the caller chooses)."""
    return confirm_phone_code(ctx, actor.account_id, body.code)


@router.get(
    "/notifications/dead-letters", operation_id="notifications-dead-letters", responses=READ
)
def dead_letters(ctx: Context, actor: CurrentActor, limit: Int64 = 100) -> list[DeadLetter]:
    """Operators: messages whose tries are spent (kinds, ids and the channel's error only)."""
    require_role(actor.role, Role.OPERATOR)
    return list_dead_letters(ctx, limit=limit)


@router.post(
    "/notifications/dead-letters/retry", operation_id="notifications-retry", responses=WRITE
)
def retry(
    body: RetryRequest, ctx: Context, actor: CurrentActor, key: IdempotencyKey = None
) -> RetryDone:
    """Operators: put dead letters (all, or `ids`) back in the outbox with fresh tries. Send an
    Idempotency-Key: a retry with it answers the first count (without it, a retry puts back what
    died since)."""
    require_role(actor.role, Role.OPERATOR)
    retried = retry_dead_letters(ctx, actor.account_id, body.ids, idempotency_key=key)
    return RetryDone(retried=retried)
