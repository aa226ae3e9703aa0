"""The operator's figures: how each signal fared with reviewers (and the weight it suggests), what
investigations cost per case, and how flagged cases ended."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select

from mutualaid.db.models import (
    Account,
    Claim,
    ClaimRisk,
    ClaimRiskSignal,
    InvestigationReport,
    RiskSignalFeedback,
)
from mutualaid.db.queries.plans import plan_by_code
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.claims import RejectionReason
from mutualaid.domain.risk import (
    DEFAULT_PARAMS,
    SIGNALS,
    InvestigationMode,
    SignalRecord,
    WeightAdvice,
    advise_weights,
    weight_of,
)
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.risk.risk import plan_params


def weight_report(
    ctx: ServiceContext, actor: Actor, plan_code: str | None = None
) -> list[WeightAdvice]:
    """Per signal: how often it fired, how useful reviewers found it, how often its cases were
    rejected, and the weight the feedback suggests (set-based counts)."""
    require_role(actor.role, Role.OPERATOR, Role.REVIEWER, Role.AUDITOR)
    with ctx.reading() as session:
        scope, params = select(Claim.id), DEFAULT_PARAMS
        if plan_code:
            plan_id = plan_by_code(session, plan_code).id
            scope, params = scope.where(Claim.plan_id == plan_id), plan_params(session, plan_id)
        fired = dict(
            session.execute(
                select(ClaimRiskSignal.code, func.count())
                .where(ClaimRiskSignal.claim_id.in_(scope))
                .group_by(ClaimRiskSignal.code)
            ).all()
        )
        feedback = {
            (code, bool(useful)): n
            for code, useful, n in session.execute(
                select(RiskSignalFeedback.code, RiskSignalFeedback.useful, func.count())
                .where(RiskSignalFeedback.claim_id.in_(scope))
                .group_by(RiskSignalFeedback.code, RiskSignalFeedback.useful)
            ).all()
        }
        outcomes = {
            code: (int(decided or 0), int(rejected or 0))
            for code, decided, rejected in session.execute(
                select(
                    ClaimRiskSignal.code, func.count(Claim.decided_at), func.sum(_rejected_case())
                )
                .join(Claim, Claim.id == ClaimRiskSignal.claim_id)
                .where(ClaimRiskSignal.claim_id.in_(scope))
                .group_by(ClaimRiskSignal.code)
            ).all()
        }
        records = [
            SignalRecord(
                s.code,
                weight_of(s.code, params),
                int(fired.get(str(s.code), 0)),
                int(feedback.get((str(s.code), True), 0)),
                int(feedback.get((str(s.code), False), 0)),
                *outcomes.get(str(s.code), (0, 0)),
            )
            for s in SIGNALS
        ]
        return advise_weights(records)


def _rejected_case() -> Any:
    return case((Claim.decision_reason.is_not(None), 1), else_=0)


# --- investigation routing and the operator's figures -------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModeCost:
    mode: str
    cases: int
    cost_fen: int
    #: Rounded half up to the fen.
    cost_per_case_fen: int


@dataclass(frozen=True, slots=True)
class RiskOperations:
    plan_code: str
    modes: list[ModeCost]
    flagged: int
    flagged_decided: int
    flagged_rejected: int
    flagged_rejected_fraud: int
    unflagged_decided: int
    unflagged_rejected: int


def risk_operations(ctx: ServiceContext, actor: Actor, plan_code: str) -> RiskOperations:
    """What investigations cost per case (field vs desk) and how flagged cases ended."""
    require_role(actor.role, Role.OPERATOR, Role.AUDITOR)
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        modes = []
        for mode, role in (
            (InvestigationMode.FIELD, Role.INVESTIGATOR),
            (InvestigationMode.DESK, Role.REVIEWER),
        ):
            cases, cost = session.execute(
                select(
                    func.count(func.distinct(InvestigationReport.claim_id)),
                    func.coalesce(func.sum(InvestigationReport.cost_fen), 0),
                )
                .join(Claim, Claim.id == InvestigationReport.claim_id)
                .join(Account, Account.id == InvestigationReport.investigator_id)
                .where(Claim.plan_id == plan.id, Account.role == str(role))
            ).one()
            modes.append(
                ModeCost(
                    str(mode),
                    int(cases),
                    int(cost),
                    (2 * int(cost) + int(cases)) // (2 * int(cases)) if cases else 0,
                )
            )
        flagged_expr = ClaimRisk.score >= plan_params(session, plan.id).medium_threshold
        rows = session.execute(
            select(
                flagged_expr,
                func.count(),
                func.count(Claim.decided_at),
                func.sum(_rejected_case()),
                func.sum(_fraud_case()),
            )
            .join(ClaimRisk, ClaimRisk.claim_id == Claim.id)
            .where(Claim.plan_id == plan.id)
            .group_by(flagged_expr)
        ).all()
        figures = {bool(f): (int(n), int(d), int(r or 0), int(x or 0)) for f, n, d, r, x in rows}
        flagged = figures.get(True, (0, 0, 0, 0))
        unflagged = figures.get(False, (0, 0, 0, 0))
        return RiskOperations(
            plan.code,
            modes,
            flagged[0],
            flagged[1],
            flagged[2],
            flagged[3],
            unflagged[1],
            unflagged[2],
        )


def _fraud_case() -> Any:
    return case((Claim.decision_reason == str(RejectionReason.FRAUD), 1), else_=0)
