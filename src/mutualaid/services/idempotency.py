"""Idempotency keys: a retried or double-clicked mutation returns the first result, once.

The key row is inserted in the same transaction as the change, under UNIQUE(account_id, key): of two
concurrent requests with one key, the second waits for the first and then replays its answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import TypeAdapter
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mutualaid.db.models import IdempotencyKey
from mutualaid.domain.errors import Conflict, DomainError

if TYPE_CHECKING:
    from mutualaid.services.context import ServiceContext

R = TypeVar("R")

MAX_KEY_LENGTH = 200
INSERT_KEY = insert(IdempotencyKey)


@dataclass(frozen=True, slots=True)
class Once(Generic[R]):
    """What makes a request idempotent: at most one commit per (account, key), and a retry of the
    same request answers with the first answer. `key` None: the request is not idempotent."""

    account_id: int
    key: str | None
    operation: str
    request: Mapping[str, Any]
    result_type: type[R]


def check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise DomainError(
            "invalid_idempotency_key",
            f"a key has 1 to {MAX_KEY_LENGTH} characters",
            "Idempotency-Key",
        )


_adapters: dict[object, TypeAdapter[Any]] = {}


def adapter_for(result_type: type[Any]) -> TypeAdapter[Any]:
    # Building a TypeAdapter compiles a validator: do it once per result type, not per request.
    adapter = _adapters.get(result_type)
    if adapter is None:
        adapter = _adapters[result_type] = TypeAdapter(result_type)
    return adapter


def fingerprint(request: Mapping[str, Any]) -> str:
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _stored(session: Session, account_id: int, key: str) -> IdempotencyKey | None:
    return session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.account_id == account_id, IdempotencyKey.key == key
        )
    )


def stored_answer(ctx: ServiceContext, once: Once[R]) -> R | None:
    """The answer committed under `once`'s key, or None when there is none."""
    assert once.key is not None
    with ctx.reading() as session:
        row = _stored(session, once.account_id, once.key)
        if row is None:
            return None
        return _replay(row, once.operation, fingerprint(once.request), once.result_type)


def _replay(row: IdempotencyKey, operation: str, request_sha256: str, result_type: type[R]) -> R:
    if row.operation != operation or row.request_sha256 != request_sha256:
        raise Conflict(
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request",
            "Idempotency-Key",
        )
    return adapter_for(result_type).validate_python(row.response)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class KeyRow:
    """The idempotency row an attempt must write in the same transaction as its change."""

    account_id: int
    key: str
    operation: str
    request_sha256: str
    created_at: datetime
    result_type: type[Any]

    def values(self, result: Any) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "key": self.key,
            "operation": self.operation,
            "request_sha256": self.request_sha256,
            "created_at": self.created_at,
            "response": adapter_for(self.result_type).dump_python(result, mode="json"),
        }


def act_once(
    ctx: ServiceContext,
    *,
    account_id: int,
    key: str | None,
    operation: str,
    request: Mapping[str, Any],
    result_type: type[R],
    attempt: Callable[[KeyRow | None], R],
) -> R:
    """Run `attempt`, which writes its change and the given key row atomically, at most once per
    (account, key).

    The key row, with the answer, is the attempt's last write. Of two requests with one key
    (a retry, a double click, two workers), only one can commit that row: UNIQUE(account_id, key)
    makes the other wait for the first and then fail, so its work is rolled back and it answers
    with the stored answer. Writing the key last costs no statement up front on the common path
    (a first attempt), which is most of what a join costs.
    """
    if key is None:
        return attempt(None)
    check_key(key)
    request_sha256 = fingerprint(request)
    try:
        return attempt(
            KeyRow(account_id, key, operation, request_sha256, ctx.clock.now(), result_type)
        )
    except (DomainError, IntegrityError):
        # Refused, or beaten by a twin: when the key has an answer, that answer is the answer
        # (a retried join finds "already a member" only because its first attempt succeeded).
        with ctx.reading() as session:
            row = _stored(session, account_id, key)
            if row is None:
                raise
            return _replay(row, operation, request_sha256, result_type)


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
    """Run `action` in one unit of work, at most once per (account, key)."""
    with ctx.unit_of_work(Once(account_id, key, operation, request, result_type)) as uow:
        uow.commit(action(uow.session))
    return uow.result
