"""A jury round as members and the public see it, and a juror's pseudonym in draws.

No live tally: counts are computed only when a vote closes (closing.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select

from mutualaid.db.models import (
    Claim,
    JuryCase,
    JurySeat,
    JuryVote,
)
from mutualaid.db.queries.plans import plan_by_code
from mutualaid.domain.errors import NotFound
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext


def juror_ref(account_id: int) -> str:
    """A juror's public pseudonym in draws (the account id itself is not published)."""
    return hashlib.sha256(f"mutualaid/juror/{account_id}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class JuryView:
    id: int
    claim_ref: str
    round: int
    mode: str
    status: str
    opens_at: datetime | None
    closes_at: datetime | None
    seats: int
    candidates_sha256: str | None
    seed_hex: str | None
    outcome: str | None
    approve_votes: int | None
    reject_votes: int | None
    recusals: int | None


def jury_view(case: JuryCase, ref: str) -> JuryView:
    # Counts stay hidden until the vote has closed: no live tally sways the jurors.
    closed = case.status == "closed"
    return JuryView(
        case.id,
        ref,
        case.round,
        case.mode,
        case.status,
        case.opens_at,
        case.closes_at,
        case.seats,
        case.candidates_sha256,
        case.seed_hex,
        case.outcome,
        case.approve_votes if closed else None,
        case.reject_votes if closed else None,
        case.recusals if closed else None,
    )


def jury_rounds(ctx: ServiceContext, ref: str) -> list[JuryView]:
    with ctx.reading() as session:
        claim = session.scalars(select(Claim).where(Claim.ref == ref)).first()
        if claim is None:
            raise NotFound(
                "claim_not_found",
                f"there is no claim {ref}",
                "claim_ref",
                details={"ref": ref},
            )
        cases = session.scalars(
            select(JuryCase).where(JuryCase.claim_id == claim.id).order_by(JuryCase.round)
        ).all()
        return [jury_view(c, ref) for c in cases]


def open_votes_for(ctx: ServiceContext, actor: Actor, plan_code: str) -> list[JuryView]:
    """Votes a juror may take part in now (open votes of the plan, and panels they sit on)."""
    with ctx.reading() as session:
        now = ctx.clock.now()
        plan = plan_by_code(session, plan_code)
        seated = select(JurySeat.jury_case_id).where(JurySeat.juror_account_id == actor.account_id)
        voted = select(JuryVote.jury_case_id).where(JuryVote.juror_account_id == actor.account_id)
        rows = session.execute(
            select(JuryCase, Claim.ref)
            .join(Claim, Claim.id == JuryCase.claim_id)
            .where(
                Claim.plan_id == plan.id,
                JuryCase.status == "open",
                JuryCase.closes_at > now,
                Claim.claimant_account_id != actor.account_id,
                or_(JuryCase.mode == "open_vote", JuryCase.id.in_(seated)),
                JuryCase.id.not_in(voted),
            )
            .order_by(JuryCase.id)
        ).all()
        return [jury_view(case, ref) for case, ref in rows]
