"""Units of work and idempotency keys.

The unit of work a use case opens itself: one transaction, rolled back unless committed.

    with ctx.unit_of_work(Once(actor.account_id, key, "start_review:" + ref, {}, ClaimView)) as uow:
        claim = load(uow.session, ref)
        ...                                   # check the rule, write rows, the audit row, the leaf
        uow.commit(view_of(claim))
    return uow.result

Nothing is written unless the block calls `commit`: leaving it early, by return or by exception,
rolls back. With an idempotency key (`Once`), `commit` also stores the answer under
UNIQUE(account_id, key), in the same transaction; when the block fails, because it was refused or
because a twin request committed first, and the key already has an answer, the failure is swallowed
and `uow.result` is that answer (a retried join finds "already a member" only because its first
attempt succeeded). So code after the block reads `uow.result`, never its own locals.

Idempotency keys: a retried or double-clicked mutation returns the first result, once.

The key row is inserted in the same transaction as the change, under UNIQUE(account_id, key): of two
concurrent requests with one key, the second waits for the first and then replays its answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar, cast

from pydantic import TypeAdapter
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mutualaid.clock import Clock
from mutualaid.db.models import IdempotencyKey
from mutualaid.domain.errors import Conflict, DomainError


class Kernel(Protocol):
    """What a unit of work needs of the ServiceContext (a protocol, so this module does not import
    the context that builds on it)."""

    @property
    def sessions(self) -> sessionmaker[Session]: ...

    @property
    def clock(self) -> Clock: ...


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


def stored_answer(ctx: Kernel, once: Once[R]) -> R | None:
    """The answer committed under `once`'s key, or None when there is none."""
    assert once.key is not None
    with ctx.sessions() as session:
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


_NOT_YET: Any = object()


class UnitOfWork(Generic[R]):
    """One transaction in a use case (see the module docstring)."""

    def __init__(self, ctx: Kernel, once: Once[R] | None = None) -> None:
        self._ctx = ctx
        self._once = once if once is not None and once.key is not None else None
        self._result: R = _NOT_YET
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("the unit of work is not open")
        return self._session

    @property
    def result(self) -> R:
        """The committed answer, or the stored answer of the first of two identical requests."""
        if self._result is _NOT_YET:
            raise RuntimeError("the unit of work did not commit")
        return self._result

    def commit(self, result: R) -> R:
        """Store the idempotency key with `result` (if any) and commit; returns `result`."""
        session = self.session
        if self._once is not None:
            once = self._once
            assert once.key is not None
            row = KeyRow(
                once.account_id,
                once.key,
                once.operation,
                fingerprint(once.request),
                self._ctx.clock.now(),
                once.result_type,
            )
            session.connection().execute(INSERT_KEY, row.values(result))
        session.commit()
        self._result = result
        return result

    def __enter__(self) -> UnitOfWork[R]:
        if self._once is not None:
            check_key(cast(str, self._once.key))
        self._session = self._ctx.sessions()
        self._session.begin()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        session, self._session = self.session, None
        try:
            if session.in_transaction():
                session.rollback()
        finally:
            session.close()
        if self._once is None or not isinstance(error, DomainError | IntegrityError):
            return False
        answer = stored_answer(self._ctx, self._once)
        if answer is None:
            return False
        self._result = answer
        return True
