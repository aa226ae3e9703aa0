"""The operator console's payout desk (issue 17): the approved payouts of collected periods with
their transfers; release one (two different operators above the plan's four-eyes amount, the
rule of transfers.py), send it through the plan's provider, resend a failed one under a new key.
Also each transfer of a claim as its claimant sees it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mutualaid.db.models import Claim, PayoutRelease, Period, Plan, ProviderPayment
from mutualaid.db.queries.plans import plan_by_code
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.apportionment import PeriodState, reached
from mutualaid.domain.claims import ClaimState
from mutualaid.domain.errors import Conflict, NotFound
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.collections.payouts import finish_period, payout_amounts, record_payout
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import UnitOfWork
from mutualaid.services.payments.alipay import out_reference
from mutualaid.services.payments.providers import payment_rules
from mutualaid.services.payments.transfers import (
    Transferring,
    TransferView,
    payee_of,
    release_payout,
    send_one,
    transfer_view,
)

#: Who sees the desk; only operators act on it.
DESK_ROLES = (Role.OPERATOR, Role.AUDITOR)


@dataclass(frozen=True, slots=True)
class PayoutLine:
    claim_ref: str
    period_ref: str
    amount_fen: int
    #: to_release (no transfer yet), held, ready, pending (sent), paid, failed
    status: str
    releases: int
    releases_needed: int
    released_by_me: bool
    reference: str | None
    sent_at: datetime | None
    settled_at: datetime | None
    attempts: int


@dataclass(frozen=True, slots=True)
class TransferLine:
    """One transfer of a claim's payout, as its claimant sees it."""

    amount_fen: int
    #: sent (pending at the provider), settled (paid), failed, waiting (held or ready)
    status: str
    sent_at: datetime | None
    settled_at: datetime | None


def _transfers(session: Session, claim_id: int) -> list[ProviderPayment]:
    return list(
        session.scalars(
            select(ProviderPayment)
            .where(ProviderPayment.kind == "transfer", ProviderPayment.claim_id == claim_id)
            .order_by(ProviderPayment.id)
        )
    )


def payout_desk(ctx: ServiceContext, actor: Actor, plan_code: str) -> list[PayoutLine]:
    """Every payout of the plan's collected periods: approved and waiting, or with transfers
    (a few queries per collected period, whatever its number of cases)."""
    require_role(actor.role, *DESK_ROLES)
    rules = payment_rules(ctx, plan_code)
    lines = []
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        periods = session.scalars(
            select(Period).where(Period.plan_id == plan.id).order_by(Period.id.desc())
        ).all()
        for period in periods:
            if not reached(PeriodState(period.state), PeriodState.COLLECTED):
                continue
            states = {
                claim_id: state
                for claim_id, state in session.execute(
                    select(Claim.id, Claim.state).where(Claim.period_id == period.id)
                )
            }
            transfers: dict[int, list[ProviderPayment]] = {}
            for row in session.scalars(
                select(ProviderPayment)
                .where(ProviderPayment.kind == "transfer", ProviderPayment.period_id == period.id)
                .order_by(ProviderPayment.id)
            ):
                transfers.setdefault(row.claim_id or 0, []).append(row)
            released: dict[int, list[int]] = {}
            for payment_id, account_id in session.execute(
                select(PayoutRelease.payment_id, PayoutRelease.account_id)
                .join(ProviderPayment, ProviderPayment.id == PayoutRelease.payment_id)
                .where(ProviderPayment.period_id == period.id)
            ):
                released.setdefault(payment_id, []).append(account_id)
            for claim_id, ref, amount, _ in payout_amounts(session, period):
                rows = transfers.get(claim_id, [])
                if not rows and states.get(claim_id) != ClaimState.APPROVED:
                    continue
                last = rows[-1] if rows else None
                by = released.get(rows[0].id, []) if rows else []
                lines.append(
                    PayoutLine(
                        claim_ref=ref,
                        period_ref=period.ref,
                        amount_fen=last.amount_fen if last else amount,
                        status=last.status if last else "to_release",
                        releases=len(by),
                        releases_needed=rules.releases_needed(amount),
                        released_by_me=actor.account_id in by,
                        reference=last.provider_ref if last else None,
                        sent_at=last.sent_at if last else None,
                        settled_at=last.settled_at if last else None,
                        attempts=len(rows),
                    )
                )
    return lines


def plan_of_claim(ctx: ServiceContext, claim_ref: str) -> str:
    """The code of the plan a claim belongs to (whose provider pays it)."""
    with ctx.reading() as session:
        code = session.scalar(
            select(Plan.code).join(Claim, Claim.plan_id == Plan.id).where(Claim.ref == claim_ref)
        )
    if code is None:
        raise NotFound(
            "claim_not_found", f"there is no claim {claim_ref}", "claim", details={"ref": claim_ref}
        )
    return code


@dataclass(frozen=True, slots=True)
class _Case:
    claim_id: int
    claimant_account_id: int
    plan_code: str
    period_id: int
    amount_fen: int


def _ready_case(session: Session, claim_ref: str) -> _Case:
    """An approved claim whose period is collected, with what it is paid; else
    `payout_not_ready`."""
    row = session.execute(
        select(Claim, Plan.code).join(Plan, Plan.id == Claim.plan_id).where(Claim.ref == claim_ref)
    ).first()
    if row is None:
        raise NotFound(
            "claim_not_found", f"there is no claim {claim_ref}", "claim", details={"ref": claim_ref}
        )
    claim, plan_code = row
    period = session.get(Period, claim.period_id) if claim.period_id else None
    if (
        period is None
        or not reached(PeriodState(period.state), PeriodState.COLLECTED)
        or claim.state != ClaimState.APPROVED
    ):
        raise Conflict(
            "payout_not_ready",
            f"the payout of {claim_ref} is not ready: its claim must be approved and its period "
            "collected",
            "claim",
            details={"ref": claim_ref},
        )
    amounts = {ref: amount for _, ref, amount, _ in payout_amounts(session, period)}
    return _Case(claim.id, claim.claimant_account_id, plan_code, period.id, amounts[claim_ref])


def release_for_payment(ctx: ServiceContext, actor: Actor, claim_ref: str) -> TransferView:
    """An operator releases a payout from the desk. The first release creates its transfer,
    held until as many different operators as the plan's four-eyes rule asks have released it
    (`release_payout`): one up to the plan's four-eyes amount, two above it."""
    require_role(actor.role, Role.OPERATOR)
    with ctx.reading() as session:
        case = _ready_case(session, claim_ref)
        exists = session.scalar(
            select(func.count())
            .select_from(ProviderPayment)
            .where(ProviderPayment.kind == "transfer", ProviderPayment.claim_id == case.claim_id)
        )
    if not exists:
        key = f"payout:{claim_ref}"
        provider = payment_rules(ctx, case.plan_code).provider
        work: UnitOfWork[None] = ctx.unit_of_work()
        try:
            with work as uow:
                uow.session.add(
                    ProviderPayment(
                        provider=provider,
                        kind="transfer",
                        key=key,
                        out_ref=out_reference(key),
                        amount_fen=case.amount_fen,
                        status="held",
                        account_id=case.claimant_account_id,
                        period_id=case.period_id,
                        claim_id=case.claim_id,
                        created_at=ctx.clock.now(),
                    )
                )
                uow.commit(None)
        except IntegrityError:
            pass  # another operator's release created it a moment ago
    return release_payout(ctx, actor, claim_ref)


def _latest(session: Session, claim_ref: str) -> tuple[ProviderPayment | None, int]:
    """The claim's latest transfer and how many it has had."""
    claim_id = session.scalar(select(Claim.id).where(Claim.ref == claim_ref))
    if claim_id is None:
        raise NotFound(
            "claim_not_found", f"there is no claim {claim_ref}", "claim", details={"ref": claim_ref}
        )
    rows = _transfers(session, claim_id)
    return (rows[-1] if rows else None), len(rows)


def _payee_or_refuse(session: Session, client: Transferring, case: _Case, claim_ref: str) -> None:
    if payee_of(session, client.name, case.claimant_account_id) is None:
        raise Conflict(
            "payee_missing",
            f"the claimant of {claim_ref} has no active {client.name} account to be paid to",
            "claim",
            details={"ref": claim_ref, "provider": client.name},
        )


def send_transfer(
    ctx: ServiceContext, actor: Actor, claim_ref: str, client: Transferring
) -> TransferView:
    """Send a released payout through the provider (once: a second send answers the first)."""
    require_role(actor.role, Role.OPERATOR)
    with ctx.reading() as session:
        last, _ = _latest(session, claim_ref)
        if last is None or last.status == "held":
            raise Conflict(
                "payout_not_ready",
                f"the payout of {claim_ref} is waiting for its release",
                "claim",
                details={"ref": claim_ref},
            )
        if last.status != "ready":
            return transfer_view(session, last, claim_ref)
        key = last.key
        case = _ready_case(session, claim_ref)
        _payee_or_refuse(session, client, case, claim_ref)
    view = send_one(
        ctx, actor, client, case.period_id, case.claim_id, claim_ref, case.amount_fen, 0, key=key
    )
    return _settled_at_once(ctx, actor, client, view, key)


def resend_transfer(
    ctx: ServiceContext, actor: Actor, claim_ref: str, client: Transferring
) -> TransferView:
    """Send a failed payout again, as a new transfer under its own key (the failed one stays
    on record). Refused unless the payout's latest transfer failed."""
    require_role(actor.role, Role.OPERATOR)
    with ctx.reading() as session:
        last, attempts = _latest(session, claim_ref)
        if last is None or last.status != "failed":
            raise Conflict(
                "transfer_not_failed",
                f"the payout of {claim_ref} has no failed transfer to send again",
                "claim",
                details={"ref": claim_ref, "status": last.status if last else "none"},
            )
        case = _ready_case(session, claim_ref)
        _payee_or_refuse(session, client, case, claim_ref)
        amount = last.amount_fen
    key = f"payout:{claim_ref}:again:{attempts}"
    work: UnitOfWork[None] = ctx.unit_of_work()
    with work as uow:  # the new transfer, already released: ready at once
        now = ctx.clock.now()
        uow.session.add(
            ProviderPayment(
                provider=client.name,
                kind="transfer",
                key=key,
                out_ref=out_reference(key),
                amount_fen=amount,
                status="ready",
                account_id=case.claimant_account_id,
                period_id=case.period_id,
                claim_id=case.claim_id,
                created_at=now,
            )
        )
        uow.commit(None)
    view = send_one(
        ctx, actor, client, case.period_id, case.claim_id, claim_ref, amount, 0, key=key
    )
    return _settled_at_once(ctx, actor, client, view, key)


def _settled_at_once(
    ctx: ServiceContext, actor: Actor, client: Transferring, view: TransferView, key: str
) -> TransferView:
    """The simulated provider sends no notification: its accepted transfer is settled here, as
    Alipay's notification settles one (callbacks.py): the row paid, the payout recorded, the
    period paid once none of its cases waits."""
    if client.name != "simulated" or view.status != "pending":
        return view
    work: UnitOfWork[tuple[int, bool, int | None]] = ctx.unit_of_work()
    with work as uow:
        session = uow.session
        row = session.scalar(
            select(ProviderPayment)
            .where(ProviderPayment.provider == client.name, ProviderPayment.key == key)
            .with_for_update()
        )
        assert row is not None and row.claim_id is not None
        claim = session.get_one(Claim, row.claim_id)
        row.status = "paid"
        row.settled_at = ctx.clock.now()
        uow.commit((claim.id, claim.sponsored, claim.period_id))
    claim_id, sponsored, period_id = uow.result
    reference = f"simulated transfer {view.reference}"
    paid = record_payout(ctx, actor, claim_id, view.amount_fen, sponsored, reference)
    if period_id is not None:
        finish_period(ctx, actor, period_id, [paid] if paid else [])
    return dataclasses.replace(view, status="paid")


CLAIMANT_STATUS = {"pending": "sent", "paid": "settled", "failed": "failed"}


def claim_transfers(ctx: ServiceContext, actor: Actor, claim_ref: str) -> list[TransferLine]:
    """Each transfer of a claim's payout (its claimant's, or staff's view)."""
    with ctx.reading() as session:
        claim = session.scalar(select(Claim).where(Claim.ref == claim_ref))
        if claim is None or (
            actor.role is Role.MEMBER and claim.claimant_account_id != actor.account_id
        ):
            return []
        return [
            TransferLine(
                row.amount_fen,
                CLAIMANT_STATUS.get(row.status, "waiting"),
                row.sent_at,
                row.settled_at,
            )
            for row in _transfers(session, claim.id)
        ]
