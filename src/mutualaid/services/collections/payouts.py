"""Paying the approved cases of a collected period, once each, then marking the period paid."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Claim,
    Membership,
    Period,
    Plan,
)
from mutualaid.db.queries.plans import plan_by_code
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.apportionment import (
    PeriodState,
    prorate_payouts,
    prorated_split,
    reached,
)
from mutualaid.domain.claims import NOTE_PAID, ClaimEvent, ClaimState
from mutualaid.domain.errors import Conflict
from mutualaid.domain.ledger import SPONSOR, Leg, plan_account, transaction
from mutualaid.domain.memberships import EndReason, MembershipEvent, MembershipState
from mutualaid.domain.money import format_yuan
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.claims.claims import apply_event as apply_claim_event
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.membership_leaves import queue_membership_event
from mutualaid.services.ledger.ledger import post
from mutualaid.services.periods.views import find_period

# --- payouts ------------------------------------------------------------------------------------------

if TYPE_CHECKING:
    from mutualaid.services.idempotency import UnitOfWork


@dataclass(frozen=True, slots=True)
class Payout:
    claim_ref: str
    payee_account_id: int
    amount_fen: int
    ledger_key: str


@dataclass(frozen=True, slots=True)
class PayoutRun:
    period_ref: str
    state: PeriodState
    payouts: list[Payout]

    @property
    def total_fen(self) -> int:
        return sum(p.amount_fen for p in self.payouts)


def pay_approved_claims(
    ctx: ServiceContext, actor: Actor, plan_code: str, publicity_on: date
) -> PayoutRun:
    """Pay each case of a collected period once (payee, amount, ledger entry), then mark the
    period paid. A severe-tier payout ends the member's coverage. Resumable claim by claim."""
    require_role(actor.role, Role.OPERATOR)
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        period = find_period(session, plan, publicity_on)
        state = PeriodState(period.state)
        if state is PeriodState.PAID:
            return PayoutRun(period.ref, state, [])
        if not reached(state, PeriodState.COLLECTED):
            raise Conflict(
                "period_not_collected",
                f"collect period {period.ref} first",
                details={"period": period.ref},
            )
        claims = payout_amounts(session, period)
    payouts = []
    for claim_id, _, amount, sponsored in claims:
        payout = record_payout(ctx, actor, claim_id, amount, sponsored)
        if payout is not None:
            payouts.append(payout)
    return finish_period(ctx, actor, period.id, payouts)


def payout_amounts(session: Session, period: Period) -> list[tuple[int, str, int, bool]]:
    """Each case of the period with what it is paid: (claim id, ref, fen, sponsored)."""
    claims = session.execute(
        select(Claim.id, Claim.ref, Claim.payout_fen, Claim.sponsored)
        .where(Claim.period_id == period.id)
        .order_by(Claim.id)
    ).all()
    shared = [(ref, amount) for _, ref, amount, sponsored in claims if not sponsored]
    aid_cut, _ = prorated_split(period.aid_fen or 0, period.fee_fen or 0, period.prorated_fen or 0)
    amounts = dict(zip([ref for ref, _ in shared], prorate_payouts(shared, aid_cut), strict=True))
    return [(i, ref, amounts.get(ref, amount), sponsored) for i, ref, amount, sponsored in claims]


def finish_period(
    ctx: ServiceContext, actor: Actor, period_id: int, payouts: list[Payout]
) -> PayoutRun:
    """Mark a collected period paid once none of its cases waits for its payout."""
    work: UnitOfWork[PayoutRun] = ctx.unit_of_work()
    with work as uow:
        session = uow.session
        period = session.get_one(Period, period_id, with_for_update=True)
        unpaid = (
            session.scalar(
                select(func.count())
                .select_from(Claim)
                .where(Claim.period_id == period.id, Claim.state == ClaimState.APPROVED)
            )
            or 0
        )
        if period.state == PeriodState.COLLECTED and not unpaid:
            now = ctx.clock.now()
            period.state = PeriodState.PAID
            period.paid_at = now
            audit.record(
                session,
                at=now,
                actor_account_id=actor.account_id,
                action="period_paid",
                subject_type="period",
                subject_id=period.id,
                ref=period.ref,
                payouts=len(payouts),
            )
        uow.commit(PayoutRun(period.ref, PeriodState(period.state), payouts))
    return uow.result


def record_payout(
    ctx: ServiceContext,
    actor: Actor,
    claim_id: int,
    amount: int,
    sponsored: bool,
    reference: str = "",
) -> Payout | None:
    """The payout of one approved case, once: its ledger entry (with the provider's reference
    when a provider moved the money) and the claim paid. None: the claim is not approved."""
    work: UnitOfWork[Payout | None] = ctx.unit_of_work()
    with work as uow:
        session = uow.session
        claim = session.get_one(Claim, claim_id, with_for_update=True)
        if claim.state != ClaimState.APPROVED:
            return None
        plan = session.get_one(Plan, claim.plan_id)
        period = session.get_one(Period, claim.period_id)
        now = ctx.clock.now()
        key = f"payout:{claim.ref}"
        source = SPONSOR if sponsored else plan_account(plan.code, "aid_pool")
        post(
            session,
            transaction(
                key,
                "payout",
                [Leg(source, -amount), Leg(plan_account(plan.code, "payouts"), amount)],
                memo=f"aid for {claim.ref} to account {claim.claimant_account_id}"
                + (f", {reference}" if reference else ""),
            ),
            at=now,
            plan_id=plan.id,
            period_id=period.id,
            actor_id=actor.recorded_id,
        )
        claim.paid_at = now
        apply_claim_event(
            session,
            claim,
            plan,
            ClaimEvent.PAY,
            actor,
            now,
            public_note=NOTE_PAID.format(amount=format_yuan(amount, symbol=True, grouping=True)),
        )
        if claim.tier == "severe":
            membership = session.get_one(Membership, claim.membership_id)
            if membership.state in (MembershipState.WAITING, MembershipState.COVERED):
                audit.record(
                    session,
                    at=now,
                    actor_account_id=actor.account_id,
                    action="membership_severe_payout",
                    subject_type="membership",
                    subject_id=membership.id,
                    from_state=membership.state,
                    to_state="ended",
                    claim=claim.ref,
                )
                membership.state = MembershipState.ENDED
                membership.ended_at = now
                membership.end_reason = EndReason.SEVERE_PAYOUT
                queue_membership_event(
                    session,
                    at=now,
                    plan_ref=plan.code,
                    membership_id=membership.id,
                    event=MembershipEvent.SEVERE_PAYOUT,
                    state=MembershipState.ENDED,
                    occurred_at=now,
                )
        uow.commit(Payout(claim.ref, claim.claimant_account_id, amount, key))
    return uow.result
