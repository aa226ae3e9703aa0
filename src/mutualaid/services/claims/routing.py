"""Routing a claim under review to an investigator by its risk score: field or desk."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from mutualaid.db.models import (
    Account,
    Claim,
    ClaimRisk,
)
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.claims import ClaimState
from mutualaid.domain.errors import DomainError
from mutualaid.domain.risk import (
    InvestigationMode,
    investigation_mode,
)
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.claims.claims import load_claim
from mutualaid.services.claims.review import assign_investigation
from mutualaid.services.context import ServiceContext
from mutualaid.services.risk.risk import plan_params


@dataclass(frozen=True, slots=True)
class Routing:
    claim_ref: str
    score: int
    mode: str
    investigator_id: int


def route_investigation(
    ctx: ServiceContext, actor: Actor, ref: str, *, idempotency_key: str | None = None
) -> Routing:
    """Assign a claim under review by its score: high risk to the least-loaded field investigator,
    the rest to the least-loaded other reviewer for a desk review."""
    require_role(actor.role, Role.REVIEWER, Role.OPERATOR)
    with ctx.reading() as session:
        claim, _, _ = load_claim(session, ref, for_update=False)
        risk = session.get(ClaimRisk, claim.id)
        score = risk.score if risk else 0
        mode = investigation_mode(score, plan_params(session, claim.plan_id))
        role = Role.INVESTIGATOR if mode is InvestigationMode.FIELD else Role.REVIEWER
        load = (
            select(Claim.investigator_id, func.count().label("n"))
            .where(Claim.state.in_([ClaimState.INVESTIGATING, ClaimState.AWAITING_DOCUMENTS]))
            .group_by(Claim.investigator_id)
            .subquery()
        )
        assignee = session.scalar(
            select(Account.id)
            .outerjoin(load, load.c.investigator_id == Account.id)
            .where(Account.role == str(role), Account.id != actor.account_id)
            .order_by(func.coalesce(load.c.n, 0), Account.id)
            .limit(1)
        )
    if assignee is None:
        raise DomainError(
            "no_investigator",
            f"there is no {role} to take a {mode} investigation",
            "investigator_id",
        )
    assign_investigation(ctx, actor, ref, assignee, idempotency_key=idempotency_key)
    return Routing(ref, score, str(mode), assignee)
