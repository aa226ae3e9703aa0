"""A juror's own record: certification and the votes they cast (never anyone else's, never a
running tally: counts appear only for closed votes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from mutualaid.db.models import Claim, JurorCertification, JuryCase, JuryVote
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext


def certified_at(ctx: ServiceContext, actor: Actor) -> datetime | None:
    with ctx.reading() as session:
        row = session.get(JurorCertification, actor.account_id)
        return row.passed_at if row else None


@dataclass(frozen=True, slots=True)
class CastVote:
    jury_case_id: int
    claim_ref: str
    round: int
    choice: str
    cast_at: datetime
    status: str
    outcome: str | None
    approve_votes: int | None
    reject_votes: int | None


def votes_cast_by(ctx: ServiceContext, actor: Actor, *, limit: int = 100) -> list[CastVote]:
    with ctx.reading() as session:
        rows = session.execute(
            select(JuryVote, JuryCase, Claim.ref)
            .join(JuryCase, JuryCase.id == JuryVote.jury_case_id)
            .join(Claim, Claim.id == JuryCase.claim_id)
            .where(JuryVote.juror_account_id == actor.account_id)
            .order_by(JuryVote.id.desc())
            .limit(max(1, min(limit, 500)))
        ).all()
    votes = []
    for vote, case, ref in rows:
        closed = case.status == "closed"
        votes.append(
            CastVote(
                case.id,
                ref,
                case.round,
                vote.choice,
                vote.cast_at,
                case.status,
                case.outcome if closed else None,
                case.approve_votes if closed else None,
                case.reject_votes if closed else None,
            )
        )
    return votes
