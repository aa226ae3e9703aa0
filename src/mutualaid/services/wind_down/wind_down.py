"""The end of a plan: announce it, end cover (refunds, write-offs), run-off, close and archive.

1. `announce_end` — an end date and a reason. No new member from now on (`plan_winding_down`);
   every member is notified. Under the plan's ``sponsor_paid`` rule (Xiang Hu Bao, 2022) the
   shares stop now: every case not yet in a period becomes sponsor-paid, so the remaining periods
   charge nobody. Under ``shared_until_end`` the members share until the end date.
2. `end_cover` — on or after the end date, once every period that locked before it is collected:
   all memberships end at 00:00 on the end date, shares still being retried are written off to
   the sponsor, and every prepaid balance is refunded exactly (set-based, checked to the fen
   against the ledger). From now on the plan is in *run-off*: members first diagnosed before
   the end date may still claim within the claim deadline; those cases are reviewed and
   publicised as usual and paid by the sponsor through the usual periods.
3. `close_plan` — when no claim can be reported any more and none is open: a final checkpoint
   cosigned by the witnesses, and a static archive `mutualaid verify archive` checks offline.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import ColumnElement, Select, func, insert, literal, select, update
from sqlalchemy.orm import Session

from mutualaid.db.models import (
    Account,
    Claim,
    CollectionFailure,
    Membership,
    Period,
    Plan,
    PlanWindDown,
    PrepaidBalance,
    PrepaidRefund,
)
from mutualaid.db.queries.memberships import end_cover_with_leaves
from mutualaid.db.queries.plans import current_rules, plan_by_code
from mutualaid.domain.accounts import Role, require_role
from mutualaid.domain.apportionment import PeriodState, latest_publicity_day, period_dates, reached
from mutualaid.domain.calendars import local_date, start_of_day
from mutualaid.domain.claims import OPEN_STATES, ClaimState
from mutualaid.domain.errors import Conflict, DomainError, NotFound
from mutualaid.domain.ledger import PROVIDER, SPONSOR, Leg, plan_account, transaction
from mutualaid.domain.memberships import ACTIVE_STATES
from mutualaid.domain.plans import FundingModel
from mutualaid.domain.schemes import (
    MinimumStatus,
    PlanStatus,
    RefundCheck,
    WindDownEvent,
    WindDownRule,
    announcement_dates,
    check_refunds,
    minimum_status,
    plan_transition,
)
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.idempotency import UnitOfWork
from mutualaid.services.ledger.ledger import balances, post
from mutualaid.services.notifications import notify_many
from mutualaid.services.transparency.checkpoints import LogConfig, publish_checkpoint
from mutualaid.services.transparency.log import queue_leaf, unix_seconds
from mutualaid.services.wind_down.archives import REFUND_KEY, write_archive

#: memberships.end_reason of everyone still in the plan when its cover ended.
PLAN_ENDED = "plan_ended"
_ACTIVE = [str(s) for s in ACTIVE_STATES]
#: Claims that can no longer be paid (a rejected claim may yet be disputed before a jury).
_FINAL_CLAIM_STATES = [
    str(ClaimState.PAID),
    str(ClaimState.WITHDRAWN),
    str(ClaimState.CLOSED_REJECTED),
]


@dataclass(frozen=True, slots=True)
class WindDownView:
    plan_code: str
    status: PlanStatus
    minimum_members: int
    active_members: int
    open_claims: int
    rule: str | None = None
    reason: str | None = None
    announced_at: datetime | None = None
    end_on: date | None = None
    run_off_until_on: date | None = None
    ended_at: datetime | None = None
    memberships_ended: int | None = None
    refunds: int | None = None
    refunded_fen: int | None = None
    written_off_fen: int | None = None
    closed_at: datetime | None = None
    final_checkpoint_size: int | None = None
    archive_sha256: str | None = None


def _active_members(session: Session, plan_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.plan_id == plan_id, Membership.state.in_(_ACTIVE))
        )
        or 0
    )


def _status(session: Session, plan: Plan) -> WindDownView:
    rules = current_rules(session, plan)
    active = _active_members(session, plan.id)
    open_claims = (
        session.scalar(
            select(func.count())
            .select_from(Claim)
            .where(Claim.plan_id == plan.id, Claim.state.in_([str(s) for s in OPEN_STATES]))
        )
        or 0
    )
    base = WindDownView(
        plan.code, PlanStatus(plan.status), rules.minimum_members, active, int(open_claims)
    )
    row = session.get(PlanWindDown, plan.id)
    if row is None:
        return base
    return replace(
        base,
        rule=row.rule,
        reason=row.reason,
        announced_at=row.announced_at,
        end_on=row.end_on,
        run_off_until_on=row.run_off_until_on,
        ended_at=row.ended_at,
        memberships_ended=row.memberships_ended,
        refunds=row.refunds,
        refunded_fen=row.refunded_fen,
        written_off_fen=row.written_off_fen,
        closed_at=row.closed_at,
        final_checkpoint_size=row.final_checkpoint_size,
        archive_sha256=row.archive_sha256,
    )


def wind_down_status(ctx: ServiceContext, plan_code: str) -> WindDownView:
    """Where the plan stands: open, winding down, in run-off or closed, with the figures."""
    with ctx.reading() as session:
        return _status(session, plan_by_code(session, plan_code))


def _wind_down(session: Session, plan: Plan) -> PlanWindDown:
    row = session.get(PlanWindDown, plan.id)
    if row is None:
        raise NotFound(
            "not_announced", f"no end has been announced for plan {plan.code}", "plan_code"
        )
    return row


def _payers(plan_id: int, *where: ColumnElement[bool]) -> Select[Any]:
    return (
        select(Membership.payer_account_id).where(Membership.plan_id == plan_id, *where).distinct()
    )


def _sponsor_unshared_claims(session: Session, plan_id: int) -> int:
    """Every claim of the plan not yet in a period becomes sponsor-paid (one UPDATE)."""
    result = session.execute(
        update(Claim)
        .where(
            Claim.plan_id == plan_id,
            Claim.period_id.is_(None),
            Claim.sponsored.is_(False),
            Claim.state.not_in(_FINAL_CLAIM_STATES),
        )
        .values(sponsored=True)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- 1. the announcement ----------------------------------------------------------------------------


def announce_end(
    ctx: ServiceContext, actor: Actor, plan_code: str, end_on: date, reason: str
) -> WindDownView:
    """Announce the end of a plan: cover ends at 00:00 on `end_on` (the plan's zone). Announcing
    the same end date again changes nothing; another date is refused."""
    require_role(actor.role, Role.OPERATOR)
    reason = reason.strip()
    if not reason or len(reason) > 2000:
        raise DomainError(
            "reason_required", "say why the plan ends (1 to 2,000 characters)", "reason"
        )
    uow: UnitOfWork[WindDownView] = ctx.unit_of_work()
    with uow:
        session = uow.session
        plan = plan_by_code(session, plan_code, for_update=True)
        existing = session.get(PlanWindDown, plan.id)
        if existing is not None:
            if existing.end_on != end_on:
                raise Conflict(
                    "already_announced",
                    f"the end of {plan.code} was announced for {existing.end_on}",
                    "end_on",
                )
            return _status(session, plan)
        rules = current_rules(session, plan)
        now = ctx.clock.now()
        dates = announcement_dates(
            local_date(now, rules.zone),
            end_on,
            notice_days=rules.wind_down.notice_days,
            deadline_days=rules.claims.deadline_days,
        )
        plan.status = plan_transition(plan.status, WindDownEvent.ANNOUNCE)
        rule = WindDownRule(rules.wind_down.rule)
        session.add(
            PlanWindDown(
                plan_id=plan.id,
                rule=rule,
                reason=reason,
                announced_at=now,
                announced_by=actor.recorded_id,
                end_on=end_on,
                end_at=start_of_day(end_on, rules.zone),
                run_off_until_on=dates.run_off_until_on,
            )
        )
        sponsored = (
            _sponsor_unshared_claims(session, plan.id) if rule is WindDownRule.SPONSOR_PAID else 0
        )
        notified = notify_many(
            session,
            at=now,
            account_ids=_payers(plan.id, Membership.state.in_(_ACTIVE)),
            kind="plan_wind_down_announced",
            subject_type="plan",
            subject_id=plan.id,
            payload={
                "plan": plan.code,
                "end_on": end_on.isoformat(),
                "rule": str(rule),
                "run_off_until_on": dates.run_off_until_on.isoformat(),
                "reason": reason,
            },
        )
        queue_leaf(
            session,
            at=now,
            leaf_type="plan_event",
            subject_type="plan",
            subject_ref=plan.code,
            fields={
                "plan_ref": plan.code,
                "event": "wind_down_announced",
                "at": unix_seconds(now),
                "end_on": end_on.isoformat(),
                "run_off_until_on": dates.run_off_until_on.isoformat(),
                "rule": str(rule),
            },
        )
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="plan_wind_down_announced",
            subject_type="plan",
            subject_id=plan.id,
            end_on=end_on.isoformat(),
            rule=str(rule),
            claims_sponsored=sponsored,
            payers_notified=notified,
        )
        session.flush()
        uow.commit(_status(session, plan))
    return uow.result


# --- 2. the end of cover ------------------------------------------------------------------------------


def _require_periods_settled(session: Session, plan: Plan, end_on: date) -> None:
    rules = current_rules(session, plan)
    unsettled = list(
        session.scalars(
            select(Period.ref)
            .where(
                Period.plan_id == plan.id,
                Period.state.in_(
                    [str(s) for s in PeriodState if not reached(s, PeriodState.COLLECTED)]
                ),
            )
            .order_by(Period.publicity_on)
        )
    )
    if unsettled:
        raise Conflict(
            "periods_unsettled", f"collect period(s) {', '.join(unsettled)} first", "plan_code"
        )
    last = latest_publicity_day(rules, end_on - timedelta(days=1))
    if (
        period_dates(rules, last).lock_at > plan.created_at
        and session.scalar(
            select(Period.id).where(Period.plan_id == plan.id, Period.publicity_on == last)
        )
        is None
    ):
        raise Conflict(
            "periods_unsettled",
            f"close and collect the period of {last} (the last before the end) first",
            "plan_code",
        )


def _write_off_unpaid(session: Session, plan: Plan, now: datetime, actor: Actor) -> int:
    """Shares still being retried are written off to the sponsor: nobody pays after the end."""
    retrying = (
        select(CollectionFailure.id)
        .join(Period, Period.id == CollectionFailure.period_id)
        .where(Period.plan_id == plan.id, CollectionFailure.status == "retrying")
    )
    total = int(
        session.scalar(
            select(func.coalesce(func.sum(CollectionFailure.amount_fen), 0)).where(
                CollectionFailure.id.in_(retrying)
            )
        )
        or 0
    )
    if total:
        post(
            session,
            transaction(
                f"wind_down_write_off:{plan.code}",
                "write_off",
                [Leg(plan_account(plan.code, "members"), total), Leg(SPONSOR, -total)],
                memo=f"shares unpaid when {plan.code} ended, borne by the sponsor",
            ),
            at=now,
            plan_id=plan.id,
            actor_id=actor.recorded_id,
        )
    session.execute(
        update(CollectionFailure)
        .where(CollectionFailure.id.in_(retrying))
        .values(status="written_off", resolved_at=now)
        .execution_options(synchronize_session=False)
    )
    return total


def refund_prepaid(session: Session, plan: Plan, now: datetime, actor: Actor) -> RefundCheck:
    """Refund every remaining prepaid balance of the plan, exactly: one INSERT … SELECT of the
    refunds, one ledger transaction for their sum, one UPDATE of the balances to zero — and the
    sum is checked against the balances and the ledger's prepaid account before anything stays."""
    account = plan_account(plan.code, "prepaid")
    negative = (
        session.scalar(
            select(func.count())
            .select_from(PrepaidBalance)
            .where(PrepaidBalance.plan_id == plan.id, PrepaidBalance.balance_fen < 0)
        )
        or 0
    )
    held = int(
        session.scalar(
            select(func.coalesce(func.sum(PrepaidBalance.balance_fen), 0)).where(
                PrepaidBalance.plan_id == plan.id
            )
        )
        or 0
    )
    ledger = balances(session, account).get(account, 0)
    session.execute(
        insert(PrepaidRefund).from_select(
            ["plan_id", "payer_account_id", "amount_fen", "refunded_at"],
            select(
                PrepaidBalance.plan_id,
                PrepaidBalance.payer_account_id,
                PrepaidBalance.balance_fen,
                literal(now, PrepaidRefund.refunded_at.type),
            ).where(PrepaidBalance.plan_id == plan.id, PrepaidBalance.balance_fen > 0),
        )
    )
    payers, refunded = session.execute(
        select(func.count(), func.coalesce(func.sum(PrepaidRefund.amount_fen), 0)).where(
            PrepaidRefund.plan_id == plan.id
        )
    ).one()
    check = check_refunds(int(payers), int(refunded), held, ledger, int(negative))
    if check.refunded_fen:
        post(
            session,
            transaction(
                REFUND_KEY.format(plan=plan.code),
                "refund",
                [Leg(account, -check.refunded_fen), Leg(PROVIDER, check.refunded_fen)],
                memo=f"prepaid balances of {plan.code} refunded to {check.payers} payers",
            ),
            at=now,
            plan_id=plan.id,
            actor_id=actor.recorded_id,
        )
    session.execute(
        update(PrepaidBalance)
        .where(PrepaidBalance.plan_id == plan.id, PrepaidBalance.balance_fen != 0)
        .values(balance_fen=0, updated_at=now)
    )
    if balances(session, account).get(account, 0) != 0:  # pragma: no cover - checked above
        raise Conflict("refunds_do_not_balance", "the prepaid account is not empty after refunds")
    return check


def end_cover(ctx: ServiceContext, actor: Actor, plan_code: str) -> WindDownView:
    """On or after the announced end date: end every membership, write off what is still being
    retried, refund the prepaid balances; the plan goes into run-off. Idempotent."""
    require_role(actor.role, Role.OPERATOR)
    uow: UnitOfWork[WindDownView] = ctx.unit_of_work()
    with uow:
        session = uow.session
        plan = plan_by_code(session, plan_code, for_update=True)
        row = _wind_down(session, plan)
        if plan.status in (PlanStatus.RUN_OFF, PlanStatus.CLOSED):
            return _status(session, plan)
        now = ctx.clock.now()
        if now < row.end_at:
            raise Conflict(
                "end_not_reached", f"cover of {plan.code} ends on {row.end_on}", "plan_code"
            )
        plan.status = plan_transition(plan.status, WindDownEvent.END_COVER)
        _require_periods_settled(session, plan, row.end_on)
        # Every active membership ends, each on the log (issue 14) by the same statement:
        # `membership_events` leaves effective at the end of cover, a few thousand to a leaf.
        row.memberships_ended = end_cover_with_leaves(
            session,
            plan_id=plan.id,
            plan_ref=plan.code,
            ended_at=row.end_at,
            end_reason=PLAN_ENDED,
            now=now,
        )
        row.written_off_fen = _write_off_unpaid(session, plan, now, actor)
        claims = _sponsor_unshared_claims(session, plan.id)
        row.refunds, row.refunded_fen = 0, 0
        if current_rules(session, plan).funding_model is FundingModel.PREPAID:
            check = refund_prepaid(session, plan, now, actor)
            row.refunds, row.refunded_fen = check.payers, check.refunded_fen
        row.ended_at = now
        notify_many(
            session,
            at=now,
            account_ids=_payers(
                plan.id, Membership.end_reason == PLAN_ENDED, Membership.ended_at == row.end_at
            ),
            kind="plan_cover_ended",
            subject_type="plan",
            subject_id=plan.id,
            payload={
                "plan": plan.code,
                "end_on": row.end_on.isoformat(),
                "run_off_until_on": row.run_off_until_on.isoformat(),
                "refunded": bool(row.refunded_fen),
            },
        )
        queue_leaf(
            session,
            at=now,
            leaf_type="plan_event",
            subject_type="plan",
            subject_ref=plan.code,
            fields={
                "plan_ref": plan.code,
                "event": "cover_ended",
                "at": unix_seconds(now),
                "end_on": row.end_on.isoformat(),
                "run_off_until_on": row.run_off_until_on.isoformat(),
                "memberships_ended": row.memberships_ended,
                "refunds": row.refunds,
                "refunded_fen": row.refunded_fen,
                "written_off_fen": row.written_off_fen,
            },
        )
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="plan_cover_ended",
            subject_type="plan",
            subject_id=plan.id,
            memberships=row.memberships_ended,
            written_off_fen=row.written_off_fen,
            refunds=row.refunds,
            refunded_fen=row.refunded_fen,
            claims_sponsored=claims,
        )
        session.flush()
        uow.commit(_status(session, plan))
    return uow.result


# --- 3. closing ---------------------------------------------------------------------------------------


def close_plan(
    ctx: ServiceContext,
    actor: Actor,
    plan_code: str,
    config: LogConfig,
    archive_dir: Path,
    *,
    http: httpx.Client | None = None,
) -> WindDownView:
    """Close a plan whose run-off is over: a final checkpoint cosigned by the witnesses' quorum,
    then the static archive in `archive_dir`. Refused while a claim can still be reported or is
    open, or while money is owed or unpaid."""
    require_role(actor.role, Role.OPERATOR)
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        row = _wind_down(session, plan)
        if plan.status == PlanStatus.CLOSED:
            return _status(session, plan)
        plan_transition(plan.status, WindDownEvent.CLOSE)
        today = local_date(ctx.clock.now(), current_rules(session, plan).zone)
        if today <= row.run_off_until_on:
            raise Conflict(
                "run_off_open",
                f"run-off claims can be reported until {row.run_off_until_on}",
                "plan_code",
            )
        status = _status(session, plan)
        if status.open_claims:
            raise Conflict(
                "claims_open", f"{status.open_claims} claim(s) are still open", "plan_code"
            )
        _require_periods_settled(session, plan, row.end_on)
        owed = {
            name: balances(session, plan_account(plan.code, name)).get(
                plan_account(plan.code, name), 0
            )
            for name in ("members", "aid_pool")
        }
        if any(owed.values()):
            raise Conflict("ledger_not_settled", f"balances left: {owed}", "plan_code")
    published = publish_checkpoint(ctx, config, http=http)
    checkpoint = published.checkpoint
    if not checkpoint.published:
        raise Conflict(
            "final_checkpoint_not_cosigned",
            f"{checkpoint.cosigners} of the {checkpoint.quorum} witnesses needed "
            f"cosigned the checkpoint at size {checkpoint.size}; try again",
        )
    digest = write_archive(ctx, plan_code, checkpoint.size, archive_dir)
    uow: UnitOfWork[WindDownView] = ctx.unit_of_work()
    with uow:
        session = uow.session
        plan = plan_by_code(session, plan_code, for_update=True)
        row = _wind_down(session, plan)
        plan.status = plan_transition(plan.status, WindDownEvent.CLOSE)
        now = ctx.clock.now()
        row.closed_at, row.final_checkpoint_size, row.archive_sha256 = now, checkpoint.size, digest
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="plan_closed",
            subject_type="plan",
            subject_id=plan.id,
            checkpoint_size=checkpoint.size,
            archive_sha256=digest,
        )
        session.flush()
        uow.commit(_status(session, plan))
    return uow.result


# --- minimum membership --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MinimumCheck:
    plan_code: str
    status: MinimumStatus
    active_members: int
    minimum_members: int
    #: none, alerted, or wind_down_announced
    action: str


def check_minimum_membership(ctx: ServiceContext, actor: Actor, plan_code: str) -> MinimumCheck:
    """A daily job: below its minimum (after the launch grace days) the plan alerts every
    operator and follows its rule (`wind_down.below_minimum`: alert, or announce the end)."""
    require_role(actor.role, Role.OPERATOR)
    alert: UnitOfWork[None] = ctx.unit_of_work()
    with alert:
        session = alert.session
        plan = plan_by_code(session, plan_code)
        rules = current_rules(session, plan)
        now = ctx.clock.now()
        today = local_date(now, rules.zone)
        active = _active_members(session, plan.id)
        status = minimum_status(
            active,
            rules.minimum_members,
            local_date(plan.created_at, rules.zone),
            today,
            rules.wind_down.minimum_grace_days,
        )
        if status is not MinimumStatus.BELOW or plan.status != PlanStatus.OPEN:
            return MinimumCheck(plan.code, status, active, rules.minimum_members, "none")
        notify_many(
            session,
            at=now,
            account_ids=select(Account.id).where(Account.role == Role.OPERATOR),
            kind="plan_below_minimum",
            subject_type="plan",
            subject_id=plan.id,
            payload={
                "plan": plan.code,
                "active_members": active,
                "minimum_members": rules.minimum_members,
            },
        )
        audit.record(
            session,
            at=now,
            actor_account_id=actor.account_id,
            action="plan_below_minimum",
            subject_type="plan",
            subject_id=plan.id,
            active_members=active,
            minimum_members=rules.minimum_members,
            rule=rules.wind_down.below_minimum,
        )
        follow = rules.wind_down.below_minimum
        end_on = today + timedelta(days=max(rules.wind_down.notice_days, 1))
        alert.commit(None)
    if follow == "wind_down":
        announce_end(
            ctx,
            actor,
            plan_code,
            end_on,
            f"membership {active} is below the plan's minimum of {rules.minimum_members}",
        )
        return MinimumCheck(plan_code, status, active, rules.minimum_members, "wind_down_announced")
    return MinimumCheck(plan_code, status, active, rules.minimum_members, "alerted")
