"""Staff search (issue 18): find claims and memberships by a claim reference, the phone number of
the account that pays, or a membership id. Phones are stored as typed (normalised, UNIQUE), so a
phone is matched exactly; results show masked names and phones, never an identity number."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select

from mutualaid.db.models import Account, Claim, Membership, Person, Plan
from mutualaid.domain.accounts import STAFF_ROLES, normalise_phone
from mutualaid.domain.errors import DomainError, Forbidden
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.accounts.phone_codes import mask_phone
from mutualaid.services.context import ServiceContext

MAX_HITS = 50
_MAX_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class SearchHit:
    #: claim or membership
    kind: str
    plan_code: str
    membership_id: int
    claim_ref: str | None
    state: str
    name_masked: str
    phone_masked: str


def _phone(query: str) -> str | None:
    try:
        return normalise_phone(query)
    except DomainError:
        return None


def staff_search(ctx: ServiceContext, actor: Actor, query: str) -> list[SearchHit]:
    """Claims and memberships that match `query` as a claim reference, a payer's phone or a
    membership id (claims first, then memberships; at most MAX_HITS of each)."""
    if actor.role not in STAFF_ROLES:
        raise Forbidden("forbidden", "this is for staff", details={"variant": "staff"})
    text = query.strip()
    if not text:
        return []
    phone = _phone(text)
    membership_id = int(text) if text.isdigit() and int(text) <= _MAX_ID else None
    with ctx.reading() as session:
        payer_ids = (
            list(session.scalars(select(Account.id).where(Account.phone == phone))) if phone else []
        )
        claim_match: list[ColumnElement[bool]] = [Claim.ref == text]
        member_match: list[ColumnElement[bool]] = []
        if payer_ids:
            claim_match.append(Claim.claimant_account_id.in_(payer_ids))
            member_match.append(Membership.payer_account_id.in_(payer_ids))
        if membership_id is not None:
            claim_match.append(Claim.membership_id == membership_id)
            member_match.append(Membership.id == membership_id)
        claims = session.execute(
            select(Claim, Plan.code, Person.name_masked, Account.phone)
            .join(Plan, Plan.id == Claim.plan_id)
            .join(Person, Person.id == Claim.person_id)
            .join(Account, Account.id == Claim.claimant_account_id)
            .where(or_(*claim_match))
            .order_by(Claim.id.desc())
            .limit(MAX_HITS)
        ).all()
        hits = [
            SearchHit("claim", code, c.membership_id, c.ref, c.state, name, mask_phone(number))
            for c, code, name, number in claims
        ]
        if not member_match:  # a claim reference: its membership too
            member_match = [Membership.id.in_([c.membership_id for c, *_ in claims])]
        memberships = session.execute(
            select(Membership, Plan.code, Person.name_masked, Account.phone)
            .join(Plan, Plan.id == Membership.plan_id)
            .join(Person, Person.id == Membership.person_id)
            .join(Account, Account.id == Membership.payer_account_id)
            .where(or_(*member_match))
            .order_by(Membership.id.desc())
            .limit(MAX_HITS)
        ).all()
    hits += [
        SearchHit("membership", code, m.id, None, m.state, name, mask_phone(number))
        for m, code, name, number in memberships
    ]
    return hits
