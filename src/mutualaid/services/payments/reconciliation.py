"""The daily reconciliation: what we recorded against what the provider's statement says."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import or_, select

from mutualaid.db.models import ProviderPayment
from mutualaid.domain.accounts import Role, require_role
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.payments.alipay import BEIJING, StatementLine


@dataclass(frozen=True, slots=True)
class Difference:
    #: missing_at_provider (we count it paid, the statement lacks it), amount_mismatch,
    #: unknown_reference (the statement has a movement we never asked for), not_paid_here (the
    #: statement has it, we count it unpaid)
    kind: str
    out_ref: str
    ours_fen: int | None
    theirs_fen: int | None
    provider_ref: str | None = None


def reconcile(
    ctx: ServiceContext,
    actor: Actor,
    provider: str,
    on: date,
    statement: Sequence[StatementLine],
) -> list[Difference]:
    """Every difference between the provider's statement for `on` (its calendar day, Beijing)
    and the movements we recorded as paid that day or that the statement names."""
    require_role(actor.role, Role.OPERATOR, Role.AUDITOR)
    start = datetime.combine(on, time(), BEIJING)
    theirs = {line.out_ref: line for line in statement}
    with ctx.reading() as session:
        rows = session.execute(
            select(
                ProviderPayment.out_ref,
                ProviderPayment.amount_fen,
                ProviderPayment.status,
                ProviderPayment.provider_ref,
            ).where(
                ProviderPayment.provider == provider,
                or_(
                    (ProviderPayment.status == "paid")
                    & (ProviderPayment.settled_at >= start)
                    & (ProviderPayment.settled_at < start + timedelta(days=1)),
                    ProviderPayment.out_ref.in_(list(theirs)),
                ),
            )
        ).all()
    differences = []
    ours = {}
    for out_ref, amount, status, reference in rows:
        ours[out_ref] = amount
        line = theirs.get(out_ref)
        if line is None:
            differences.append(Difference("missing_at_provider", out_ref, amount, None, reference))
        elif status != "paid":
            differences.append(
                Difference("not_paid_here", out_ref, amount, line.amount_fen, line.reference)
            )
        elif line.amount_fen != amount:
            differences.append(
                Difference("amount_mismatch", out_ref, amount, line.amount_fen, line.reference)
            )
    for out_ref, line in theirs.items():
        if out_ref not in ours:
            differences.append(
                Difference("unknown_reference", out_ref, None, line.amount_fen, line.reference)
            )
    return sorted(differences, key=lambda d: (d.kind, d.out_ref))
