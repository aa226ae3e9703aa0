"""The unit of work: nothing is written unless the use case commits, and an idempotency key makes a
retried or twin request answer with the first answer instead of acting again."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.factories import account
from tests.refusals import refused

from mutualaid.db.models import AuditEvent
from mutualaid.domain.errors import Conflict, DomainError
from mutualaid.services.audit import record
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import Once


def _audit_rows(ctx: ServiceContext, action: str) -> int:
    with ctx.reading() as session:
        return (
            session.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
            )
            or 0
        )


def _write(ctx: ServiceContext, session: Session, action: str) -> None:
    record(
        session,
        at=ctx.clock.now(),
        actor_account_id=None,
        action=action,
        subject_type="test",
        subject_id=None,
    )


def test_a_block_that_does_not_commit_writes_nothing(ctx: ServiceContext) -> None:
    with ctx.unit_of_work() as uow:
        _write(ctx, uow.session, "uow_no_commit")
    assert _audit_rows(ctx, "uow_no_commit") == 0
    with pytest.raises(RuntimeError):
        _ = uow.result


def test_a_committed_block_is_written_once_and_answers(ctx: ServiceContext) -> None:
    with ctx.unit_of_work() as uow:
        _write(ctx, uow.session, "uow_commit")
        uow.commit("done")
    assert uow.result == "done"
    assert _audit_rows(ctx, "uow_commit") == 1


def test_an_exception_rolls_back_everything_the_block_wrote(ctx: ServiceContext) -> None:
    with pytest.raises(Conflict), ctx.unit_of_work() as uow:
        _write(ctx, uow.session, "uow_refused")
        uow.session.flush()
        raise Conflict("test_refusal", "refused after writing")
    assert _audit_rows(ctx, "uow_refused") == 0


def test_a_retry_with_the_same_key_answers_the_first_answer_without_acting(
    ctx: ServiceContext,
) -> None:
    actor = account(ctx)
    once = Once(actor.account_id, "key-1", "uow_test", {"n": 1}, int)
    with ctx.unit_of_work(once) as first:
        _write(ctx, first.session, "uow_idempotent")
        first.commit(41)
    # The retry finds its own first attempt's effect and is refused by the rule; the key's stored
    # answer wins over the refusal.
    with ctx.unit_of_work(once) as retry:
        _write(ctx, retry.session, "uow_idempotent")
        raise Conflict("already_done", "the first attempt did it")
    assert retry.result == 41
    assert _audit_rows(ctx, "uow_idempotent") == 1


def test_a_twin_commit_under_the_same_key_is_rolled_back_and_replays(ctx: ServiceContext) -> None:
    actor = account(ctx)
    once = Once(actor.account_id, "key-2", "uow_twin", {}, str)
    with ctx.unit_of_work(once) as first:
        _write(ctx, first.session, "uow_twin")
        first.commit("first")
    # The twin did not see the first (no rule refused it): the UNIQUE key row stops its commit.
    with ctx.unit_of_work(once) as twin:
        _write(ctx, twin.session, "uow_twin")
        twin.commit("second")
    assert twin.result == "first"
    assert _audit_rows(ctx, "uow_twin") == 1


def test_the_same_key_for_another_request_is_refused(ctx: ServiceContext) -> None:
    actor = account(ctx)
    with ctx.unit_of_work(Once(actor.account_id, "key-3", "uow_a", {"x": 1}, int)) as first:
        first.commit(1)
    again = Once(actor.account_id, "key-3", "uow_a", {"x": 2}, int)
    with refused("idempotency_key_reused"), ctx.unit_of_work(again) as other:
        other.commit(2)


def test_a_key_too_long_is_refused_before_any_work(ctx: ServiceContext) -> None:
    actor = account(ctx)
    too_long = Once(actor.account_id, "k" * 201, "uow_b", {}, int)
    with refused("invalid_idempotency_key"), ctx.unit_of_work(too_long) as uow:
        _write(ctx, uow.session, "uow_long_key")
        uow.commit(1)
    assert _audit_rows(ctx, "uow_long_key") == 0


def test_a_refusal_with_no_stored_answer_is_raised(ctx: ServiceContext) -> None:
    actor = account(ctx)
    with (
        pytest.raises(DomainError),
        ctx.unit_of_work(Once(actor.account_id, "key-4", "uow_c", {}, int)),
    ):
        raise DomainError("plain_refusal", "no answer was stored")
