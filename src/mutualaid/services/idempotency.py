"""Idempotency keys: a retried or double-clicked mutation returns the first result, once.

The key row is inserted in the same transaction as the change, under UNIQUE(account_id, key): of two
concurrent requests with one key, the second waits for the first and then replays its answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mutualaid.db.models import IdempotencyKey
from mutualaid.domain.errors import Conflict, DomainError
from mutualaid.services.context import ServiceContext

R = TypeVar("R")

MAX_KEY_LENGTH = 200


class _KeyTaken(Exception):
    pass


_adapters: dict[object, TypeAdapter[Any]] = {}


def _adapter(result_type: type[Any]) -> TypeAdapter[Any]:
    # Building a TypeAdapter compiles a validator: do it once per result type, not per request.
    adapter = _adapters.get(result_type)
    if adapter is None:
        adapter = _adapters[result_type] = TypeAdapter(result_type)
    return adapter


def fingerprint(request: Mapping[str, Any]) -> str:
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(
    session: Session, account_id: int, key: str, operation: str, request_sha256: str,
    result_type: type[R],
) -> R:
    row = session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.account_id == account_id, IdempotencyKey.key == key)
    )
    if row is None or row.response is None:
        raise Conflict("request_in_progress", "a request with this key is still running", "Idempotency-Key")
    if row.operation != operation or row.request_sha256 != request_sha256:
        raise Conflict(
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request",
            "Idempotency-Key",
        )
    return _adapter(result_type).validate_python(row.response)  # type: ignore[no-any-return]


def run_idempotent(
    ctx: ServiceContext,
    *,
    account_id: int,
    key: str | None,
    operation: str,
    request: Mapping[str, Any],
    result_type: type[R],
    action: Callable[[Session], R],
) -> R:
    """Run `action` in one transaction, at most once per (account, key)."""
    if key is None:
        with ctx.transaction() as session:
            return action(session)
    if not key or len(key) > MAX_KEY_LENGTH:
        raise DomainError(
            "invalid_idempotency_key", f"a key has 1 to {MAX_KEY_LENGTH} characters", "Idempotency-Key"
        )
    request_sha256 = fingerprint(request)
    try:
        with ctx.transaction() as session:
            existing = session.scalar(
                select(IdempotencyKey.id).where(
                    IdempotencyKey.account_id == account_id, IdempotencyKey.key == key
                )
            )
            if existing is not None:
                return _replay(session, account_id, key, operation, request_sha256, result_type)
            row = IdempotencyKey(
                account_id=account_id,
                key=key,
                operation=operation,
                request_sha256=request_sha256,
                created_at=ctx.clock.now(),
            )
            session.add(row)
            try:
                session.flush()
            except IntegrityError:
                raise _KeyTaken() from None
            result = action(session)
            row.response = _adapter(result_type).dump_python(result, mode="json")
            return result
    except _KeyTaken:
        with ctx.reading() as session:
            return _replay(session, account_id, key, operation, request_sha256, result_type)
