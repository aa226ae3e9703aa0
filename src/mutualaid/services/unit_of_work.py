"""The unit of work a use case opens itself: one transaction, rolled back unless committed.

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
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mutualaid.domain.errors import DomainError
from mutualaid.services.idempotency import INSERT_KEY, KeyRow, Once, check_key, fingerprint
from mutualaid.services.idempotency import stored_answer as _stored_answer

if TYPE_CHECKING:
    from mutualaid.services.context import ServiceContext

R = TypeVar("R")

_NOT_YET: Any = object()


class UnitOfWork(Generic[R]):
    """One transaction in a use case (see the module docstring)."""

    def __init__(self, ctx: ServiceContext, once: Once[R] | None = None) -> None:
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
        answer = _stored_answer(self._ctx, self._once)
        if answer is None:
            return False
        self._result = answer
        return True


def once(
    account_id: int,
    key: str | None,
    operation: str,
    request: Mapping[str, Any],
    result_type: type[R],
) -> Once[R]:
    """Shorthand for `Once(...)` with the argument names spelled out at the call site."""
    return Once(account_id, key, operation, request, result_type)
