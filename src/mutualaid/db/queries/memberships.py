"""Reading memberships."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from mutualaid.db.models import Membership, Person, Plan


def family_memberships(
    session: Session, payer_account_id: int
) -> Sequence[Row[Membership, Person, Plan]]:
    """(membership, person, plan) for every membership this account pays for, oldest first."""
    return session.execute(
        select(Membership, Person, Plan)
        .join(Person, Person.id == Membership.person_id)
        .join(Plan, Plan.id == Membership.plan_id)
        .where(Membership.payer_account_id == payer_account_id)
        .order_by(Membership.id)
    ).all()
