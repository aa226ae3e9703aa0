"""What a reviewer sees of a claim's risk (every fired signal explained, the claim graph), and what
they say about it (feedback on a signal, which the weight report learns from)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from mutualaid.db.models import (
    ClaimRisk,
    ClaimRiskSignal,
    FraudRecord,
    RiskSignalFeedback,
)
from mutualaid.domain.accounts import STAFF_ROLES, Role, require_role
from mutualaid.domain.errors import DomainError
from mutualaid.domain.risk import BY_CODE, SignalCode, explain, investigation_mode, level_of
from mutualaid.domain.risk_scores import LinkKind, links_of
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import Once
from mutualaid.services.risk.risk import claim_by_ref, plan_params, plan_window, window_start

FEEDBACK_ROLES = (Role.REVIEWER, Role.INVESTIGATOR, Role.OPERATOR)

if TYPE_CHECKING:
    from mutualaid.services.idempotency import UnitOfWork


# --- what a reviewer sees ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignalView:
    code: str
    weight: int
    label_zh: str
    label_en: str
    explanation_zh: str
    explanation_en: str
    reason: str
    reason_zh: str
    #: This viewer's feedback on it: True useful, False not useful, None not given.
    my_feedback: bool | None


@dataclass(frozen=True, slots=True)
class RiskView:
    claim_ref: str
    state: str
    decision_reason: str | None
    scored: bool
    score: int
    level: str
    mode: str
    computed_at: datetime | None
    signals: list[SignalView]
    fraud_record_id: int | None


def claim_risk(ctx: ServiceContext, actor: Actor, ref: str) -> RiskView:
    """A claim's risk score with every fired signal explained (staff only)."""
    require_role(actor.role, *STAFF_ROLES)
    with ctx.reading() as session:
        claim = claim_by_ref(session, ref)
        risk = session.get(ClaimRisk, claim.id)
        rows = session.scalars(
            select(ClaimRiskSignal)
            .where(ClaimRiskSignal.claim_id == claim.id)
            .order_by(ClaimRiskSignal.weight.desc(), ClaimRiskSignal.code)
        ).all()
        mine = dict(
            session.execute(
                select(RiskSignalFeedback.code, RiskSignalFeedback.useful).where(
                    RiskSignalFeedback.claim_id == claim.id,
                    RiskSignalFeedback.reviewer_id == actor.account_id,
                )
            ).all()
        )
        record = session.scalar(
            select(FraudRecord.id).where(
                FraudRecord.claim_id == claim.id, FraudRecord.revoked_at.is_(None)
            )
        )
        signals = []
        for row in rows:
            signal = BY_CODE[SignalCode(row.code)]
            zh, en = explain(
                signal.code, float(row.details.get("first", 0)), float(row.details.get("second", 0))
            )
            signals.append(
                SignalView(
                    row.code,
                    row.weight,
                    signal.label_zh,
                    signal.label_en,
                    zh,
                    en,
                    signal.reason,
                    signal.reason_zh,
                    mine.get(row.code),
                )
            )
        if risk is None:
            params = plan_params(session, claim.plan_id)
            return RiskView(
                claim.ref,
                claim.state,
                claim.decision_reason,
                False,
                0,
                str(level_of(0, params)),
                str(investigation_mode(0, params)),
                None,
                signals,
                record,
            )
        return RiskView(
            claim.ref,
            claim.state,
            claim.decision_reason,
            True,
            risk.score,
            risk.level,
            risk.mode,
            risk.computed_at,
            signals,
            record,
        )


@dataclass(frozen=True, slots=True)
class GraphNode:
    ref: str
    state: str
    score: int | None
    center: bool


@dataclass(frozen=True, slots=True)
class GraphEdge:
    source: str
    target: str
    kinds: list[str]


@dataclass(frozen=True, slots=True)
class ClaimGraph:
    nodes: list[GraphNode]
    edges: list[GraphEdge]


def claim_graph(ctx: ServiceContext, actor: Actor, ref: str, limit: int = 30) -> ClaimGraph:
    """The claims linked to this one (shared contacts, payee, device, doctor, files or images),
    and the links among them: a ring shows as a dense cluster."""
    require_role(actor.role, *STAFF_ROLES)
    with ctx.reading() as session:
        claim = claim_by_ref(session, ref)
        params = plan_params(session, claim.plan_id)
        window = plan_window(session, claim.plan_id, window_start(claim.reported_on, params))
        center = window.row_of(claim.id)
        first_hop = links_of(window.claims, window.evidence, center, params)
        members = [center, *sorted(first_hop)[:limit]]
        chosen = set(members)
        edges: dict[tuple[int, int], set[LinkKind]] = {}
        for i in members:
            links = (
                first_hop if i == center else links_of(window.claims, window.evidence, i, params)
            )
            for j, kinds in links.items():
                if j in chosen:
                    edges.setdefault((min(i, j), max(i, j)), set()).update(kinds)
        scores = dict(
            session.execute(
                select(ClaimRisk.claim_id, ClaimRisk.score).where(
                    ClaimRisk.claim_id.in_([window.ids[i] for i in members])
                )
            ).all()
        )
        return ClaimGraph(
            [
                GraphNode(window.refs[i], window.states[i], scores.get(window.ids[i]), i == center)
                for i in members
            ],
            [
                GraphEdge(window.refs[a], window.refs[b], sorted(str(k) for k in kinds))
                for (a, b), kinds in sorted(edges.items())
            ],
        )


# --- reviewers' feedback and the weight report -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedbackView:
    claim_ref: str
    code: str
    useful: bool


def record_feedback(
    ctx: ServiceContext,
    actor: Actor,
    ref: str,
    code: str,
    useful: bool,
    note: str = "",
    *,
    idempotency_key: str | None = None,
) -> FeedbackView:
    """A reviewer says whether a signal helped on this case (changing their mind replaces it)."""
    require_role(actor.role, *FEEDBACK_ROLES)
    if code not in BY_CODE:
        raise DomainError("unknown_signal", f"there is no signal {code}", "signal")
    request = {"signal": code, "useful": useful, "note": note}
    once = Once(actor.account_id, idempotency_key, f"risk_feedback:{ref}", request, FeedbackView)
    work: UnitOfWork[FeedbackView] = ctx.unit_of_work(once)
    with work as uow:
        session = uow.session
        now = ctx.clock.now()
        claim = claim_by_ref(session, ref)
        fired = session.scalar(
            select(ClaimRiskSignal.id).where(
                ClaimRiskSignal.claim_id == claim.id, ClaimRiskSignal.code == code
            )
        )
        if fired is None:
            raise DomainError(
                "signal_not_fired", f"signal {code} did not fire on claim {ref}", "signal"
            )
        row = session.scalar(
            select(RiskSignalFeedback).where(
                RiskSignalFeedback.claim_id == claim.id,
                RiskSignalFeedback.code == code,
                RiskSignalFeedback.reviewer_id == actor.account_id,
            )
        )
        if row is None:
            session.add(
                RiskSignalFeedback(
                    claim_id=claim.id,
                    code=code,
                    reviewer_id=actor.account_id,
                    useful=useful,
                    note=note.strip() or None,
                    recorded_at=now,
                )
            )
        else:
            row.useful, row.note, row.recorded_at = useful, note.strip() or None, now
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="risk_feedback",
            subject_type="claim",
            subject_id=claim.id,
            signal=code,
            useful=useful,
        )
        uow.commit(FeedbackView(claim.ref, code, useful))
    return uow.result
