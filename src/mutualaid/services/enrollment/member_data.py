"""What a member sees about themself: coverage with payouts by age, and a download of their data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select

from mutualaid.db.models import (
    Account,
    Claim,
    ClaimEventRow,
    CollectionFailure,
    JurorCertification,
    JuryVote,
    Membership,
    Notification,
    Objection,
    Period,
    Person,
    Plan,
)
from mutualaid.db.queries.memberships import family_memberships
from mutualaid.db.queries.plans import rules_of
from mutualaid.domain.calendars import age_in_years, local_date
from mutualaid.domain.memberships import CoverageDates, MembershipState, Relation, state_on
from mutualaid.domain.plans import Tier
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext


@dataclass(frozen=True, slots=True)
class Coverage:
    """One family membership as its payer sees it, with what it would pay if diagnosed today."""

    membership_id: int
    plan_code: str
    plan_name_zh: str
    plan_name_en: str
    name_masked: str
    relation: Relation
    state: MembershipState
    joined_on: date
    waiting_ends_on: date
    covered_from_on: date
    ages_out_on: date
    end_reason: str | None
    age_years: int
    #: Payout for an illness first diagnosed today, by severity tier (None: the tier is not covered).
    payout_severe_fen: int | None
    payout_mild_fen: int | None
    #: In the waiting period: only illness caused by an accident is covered (and what it pays).
    accidents_covered_while_waiting: bool = False
    payout_accident_severe_fen: int | None = None
    payout_accident_mild_fen: int | None = None
    #: Suspended: the unpaid shares (sum), the periods they are of, and the last day of the
    #: daily retries (after it the membership is removed).
    owed_fen: int = 0
    owed_periods: tuple[str, ...] = ()
    retry_until_on: date | None = None

    @property
    def active(self) -> bool:
        return self.state in (
            MembershipState.WAITING,
            MembershipState.COVERED,
            MembershipState.SUSPENDED,
        )


def family_coverage(ctx: ServiceContext, actor: Actor) -> list[Coverage]:
    with ctx.reading() as session:
        result = []
        owed: dict[int, list[tuple[int, str, date]]] = {}
        for membership_id, amount, ref, until in session.execute(
            select(
                CollectionFailure.membership_id,
                CollectionFailure.amount_fen,
                Period.ref,
                CollectionFailure.retry_until_on,
            )
            .join(Period, Period.id == CollectionFailure.period_id)
            .where(
                CollectionFailure.payer_account_id == actor.account_id,
                CollectionFailure.status == "retrying",
            )
            .order_by(CollectionFailure.id)
        ):
            owed.setdefault(membership_id, []).append((int(amount), ref, until))
        for membership, person, plan in family_memberships(session, actor.account_id):
            rules = rules_of(session, plan.id, membership.plan_version)
            today = local_date(ctx.clock.now(), rules.zone)
            dates = CoverageDates(
                membership.joined_on,
                membership.waiting_ends_on,
                membership.covered_from_on,
                membership.ages_out_on,
            )
            age = age_in_years(person.birth_on, today)
            result.append(
                Coverage(
                    membership_id=membership.id,
                    plan_code=plan.code,
                    plan_name_zh=plan.name_zh,
                    plan_name_en=plan.name_en,
                    name_masked=person.name_masked,
                    relation=Relation(person.relation),
                    state=state_on(dates, MembershipState(membership.state), today),
                    joined_on=membership.joined_on,
                    waiting_ends_on=membership.waiting_ends_on,
                    covered_from_on=membership.covered_from_on,
                    ages_out_on=membership.ages_out_on,
                    end_reason=membership.end_reason,
                    age_years=age,
                    payout_severe_fen=rules.payout_fen(age, Tier.SEVERE, accident=False),
                    payout_mild_fen=rules.payout_fen(age, Tier.MILD, accident=False),
                    accidents_covered_while_waiting=rules.waiting_period.accidents_covered,
                    payout_accident_severe_fen=rules.payout_fen(age, Tier.SEVERE, accident=True),
                    payout_accident_mild_fen=rules.payout_fen(age, Tier.MILD, accident=True),
                    owed_fen=sum(a for a, _, _ in owed.get(membership.id, [])),
                    owed_periods=tuple(r for _, r, _ in owed.get(membership.id, [])),
                    retry_until_on=max(
                        (u for _, _, u in owed.get(membership.id, [])), default=None
                    ),
                )
            )
        return result


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def export_member_data(ctx: ServiceContext, actor: Actor) -> dict[str, Any]:
    """Everything the platform holds about the account and the family it pays for, decrypted.

    What a member downloads from "my data" (and what a wind-down hands every member).
    """
    protector = ctx.protector
    with ctx.reading() as session:
        account = session.get(Account, actor.account_id)
        assert account is not None
        persons = session.scalars(
            select(Person).where(Person.account_id == actor.account_id).order_by(Person.id)
        ).all()
        memberships = session.execute(
            select(Membership, Plan.code)
            .join(Plan, Plan.id == Membership.plan_id)
            .where(Membership.payer_account_id == actor.account_id)
            .order_by(Membership.id)
        ).all()
        claims = session.execute(
            select(Claim, Plan.code)
            .join(Plan, Plan.id == Claim.plan_id)
            .where(Claim.claimant_account_id == actor.account_id)
            .order_by(Claim.id)
        ).all()
        claim_ids = [claim.id for claim, _ in claims]
        events = (
            session.scalars(
                select(ClaimEventRow)
                .where(ClaimEventRow.claim_id.in_(claim_ids))
                .order_by(ClaimEventRow.id)
            ).all()
            if claim_ids
            else []
        )
        objections = session.execute(
            select(Objection, Claim.ref)
            .join(Claim, Claim.id == Objection.claim_id)
            .where(Objection.objector_account_id == actor.account_id)
            .order_by(Objection.id)
        ).all()
        certification = session.get(JurorCertification, actor.account_id)
        votes = session.scalars(
            select(JuryVote)
            .where(JuryVote.juror_account_id == actor.account_id)
            .order_by(JuryVote.id)
        ).all()
        notifications = session.scalars(
            select(Notification)
            .where(Notification.account_id == actor.account_id)
            .order_by(Notification.id)
        ).all()
        by_claim: dict[int, list[dict[str, Any]]] = {}
        for event in events:
            by_claim.setdefault(event.claim_id, []).append(
                {
                    "at": _iso(event.at),
                    "event": event.event,
                    "state": event.to_state,
                    "reason_code": event.reason_code,
                    "note": event.public_note,
                }
            )
        return {
            "format": "mutualaid-member-data/v1",
            "exported_at": _iso(ctx.clock.now()),
            "account": {
                "id": account.id,
                "phone": account.phone,
                "role": account.role,
                "display_name": account.display_name,
                "locale": account.locale,
                "created_at": _iso(account.created_at),
            },
            "persons": [
                {
                    "id": p.id,
                    "relation": p.relation,
                    "full_name": protector.decrypt(p.name_ciphertext, p.key_version),
                    "id_number": protector.decrypt(p.identity_ciphertext, p.key_version),
                    "birth_on": _iso(p.birth_on),
                    "sex": p.sex,
                    "province_code": p.province_code,
                    "created_at": _iso(p.created_at),
                }
                for p in persons
            ],
            "memberships": [
                {
                    "id": m.id,
                    "plan": code,
                    "plan_version": m.plan_version,
                    "person_id": m.person_id,
                    "state": m.state,
                    "joined_on": _iso(m.joined_on),
                    "waiting_ends_on": _iso(m.waiting_ends_on),
                    "covered_from_on": _iso(m.covered_from_on),
                    "ages_out_on": _iso(m.ages_out_on),
                    "ended_at": _iso(m.ended_at),
                    "end_reason": m.end_reason,
                }
                for m, code in memberships
            ],
            "claims": [
                {
                    "ref": c.ref,
                    "plan": code,
                    "membership_id": c.membership_id,
                    "state": c.state,
                    "illness_code": c.illness_code,
                    "tier": c.tier,
                    "accident": c.accident,
                    "diagnosed_on": _iso(c.diagnosed_on),
                    "hospital": c.hospital,
                    "payout_fen": c.payout_fen,
                    "reported_on": _iso(c.reported_on),
                    "decision_reason": c.decision_reason,
                    "decision_note": c.decision_note,
                    "timeline": by_claim.get(c.id, []),
                }
                for c, code in claims
            ],
            "objections": [
                {
                    "claim_ref": ref,
                    "state": o.state,
                    "reason": o.reason,
                    "filed_at": _iso(o.filed_at),
                    "review_note": o.review_note,
                }
                for o, ref in objections
            ],
            "juror": {
                "certified_at": _iso(certification.passed_at) if certification else None,
                "votes": [
                    {"jury_case_id": v.jury_case_id, "choice": v.choice, "cast_at": _iso(v.cast_at)}
                    for v in votes
                ],
            },
            "notifications": [
                {
                    "kind": n.kind,
                    "created_at": _iso(n.created_at),
                    "payload": n.payload,
                    "read": n.read_at is not None,
                }
                for n in notifications
            ],
        }
