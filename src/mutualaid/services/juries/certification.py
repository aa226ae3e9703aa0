"""Juror certification: the quiz on the rules a juror applies; passing it once certifies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mutualaid.db.models import (
    JurorCertification,
)
from mutualaid.domain.juries import (
    CERTIFICATION_QUIZ,
)
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import Once, UnitOfWork


def certification_quiz() -> list[dict[str, Any]]:
    return [
        {"code": q.code, "text_zh": q.text_zh, "text_en": q.text_en, "choices": list(q.choices)}
        for q in CERTIFICATION_QUIZ
    ]


@dataclass(frozen=True, slots=True)
class CertificationResult:
    passed: bool
    wrong: list[str]


def certify_juror(
    ctx: ServiceContext,
    actor: Actor,
    answers: dict[str, str],
    *,
    idempotency_key: str | None = None,
) -> CertificationResult:
    wrong = [q.code for q in CERTIFICATION_QUIZ if answers.get(q.code) != q.answer]
    if wrong:
        return CertificationResult(False, wrong)
    once = Once(actor.account_id, idempotency_key, "certify_juror", {}, CertificationResult)
    uow: UnitOfWork[CertificationResult] = ctx.unit_of_work(once)
    with uow:
        session = uow.session
        now = ctx.clock.now()
        row = session.get(JurorCertification, actor.account_id)
        if row is None:
            session.add(
                JurorCertification(
                    account_id=actor.account_id, passed_at=now, score=len(CERTIFICATION_QUIZ)
                )
            )
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="juror_certified",
            subject_type="account",
            subject_id=actor.account_id,
        )
        uow.commit(CertificationResult(True, []))
    return uow.result
