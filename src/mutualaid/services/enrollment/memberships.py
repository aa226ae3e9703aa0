"""Memberships: reading them, leaving or suspending one, the daily job that applies what time
alone changes, and the staff listing of a plan's members. (Joining: joins.py.)"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, insert, literal, select, update
from sqlalchemy.orm import Session

from mutualaid.db.models import Account, AuditEvent, Membership, Person, Plan
from mutualaid.db.queries.memberships import advance_with_leaves, family_memberships
from mutualaid.db.queries.plans import current_rules, plan_by_code, rules_of
from mutualaid.domain.accounts import STAFF_ROLES, Role
from mutualaid.domain.calendars import local_date
from mutualaid.domain.errors import DomainError, Forbidden, NotFound
from mutualaid.domain.memberships import (
    ACTIVE_STATES,
    END_REASONS,
    CoverageDates,
    MembershipEvent,
    MembershipState,
    Relation,
    state_on,
    transition,
)
from mutualaid.services import audit
from mutualaid.services.accounts.accounts import Actor
from mutualaid.services.context import ServiceContext
from mutualaid.services.enrollment.membership_leaves import queue_membership_event
from mutualaid.services.enrollment.moves import move_ageing_out
from mutualaid.services.idempotency import Once, UnitOfWork

_ACTIVE = [str(s) for s in ACTIVE_STATES]
#: Events that only their own use cases apply (claims/filing.py, moves.py), with the claim, the
#: refund or the new membership that goes with them.
OWN_USE_CASE_EVENTS = frozenset({MembershipEvent.WAITING_ILLNESS, MembershipEvent.MOVE_OUT})
#: Benchmarks only: set to "1", the daily job writes no leaves, to measure what they cost
#: (benchmarks/RESULTS.md, issue 14). Never set in production.
NO_LEAVES_ENV = "MUTUALAID_BENCH_NO_MEMBERSHIP_LEAVES"


@dataclass(frozen=True, slots=True)
class MembershipView:
    id: int
    plan_code: str
    person_id: int
    name_masked: str
    relation: Relation
    state: MembershipState
    joined_on: date
    waiting_ends_on: date
    covered_from_on: date
    ages_out_on: date
    end_reason: str | None = None


def _view(m: Membership, person: Person, plan_code: str, today: date) -> MembershipView:
    dates = CoverageDates(m.joined_on, m.waiting_ends_on, m.covered_from_on, m.ages_out_on)
    return MembershipView(
        id=m.id,
        plan_code=plan_code,
        person_id=person.id,
        name_masked=person.name_masked,
        relation=Relation(person.relation),
        state=state_on(dates, MembershipState(m.state), today),
        joined_on=m.joined_on,
        waiting_ends_on=m.waiting_ends_on,
        covered_from_on=m.covered_from_on,
        ages_out_on=m.ages_out_on,
        end_reason=m.end_reason,
    )


def _load_visible(
    session: Session, actor: Actor, membership_id: int
) -> tuple[Membership, Person, Plan]:
    row = session.execute(
        select(Membership, Person, Plan)
        .join(Person, Person.id == Membership.person_id)
        .join(Plan, Plan.id == Membership.plan_id)
        .where(Membership.id == membership_id)
    ).first()
    # A member sees only their own family's memberships; to anyone else they do not exist.
    if row is None or (
        actor.role not in STAFF_ROLES and row[0].payer_account_id != actor.account_id
    ):
        raise NotFound(
            "membership_not_found", f"there is no membership {membership_id}", "membership_id"
        )
    return row


def get_membership(ctx: ServiceContext, actor: Actor, membership_id: int) -> MembershipView:
    with ctx.reading() as session:
        membership, person, plan = _load_visible(session, actor, membership_id)
        rules = rules_of(session, plan.id, membership.plan_version)
        return _view(membership, person, plan.code, local_date(ctx.clock.now(), rules.zone))


def list_family_memberships(ctx: ServiceContext, actor: Actor) -> list[MembershipView]:
    with ctx.reading() as session:
        views = []
        for membership, person, plan in family_memberships(session, actor.account_id):
            rules = rules_of(session, plan.id, membership.plan_version)
            views.append(
                _view(membership, person, plan.code, local_date(ctx.clock.now(), rules.zone))
            )
        return views


def change_membership(
    ctx: ServiceContext,
    actor: Actor,
    membership_id: int,
    event: MembershipEvent,
    *,
    reason: str | None = None,
    idempotency_key: str | None = None,
) -> MembershipView:
    """Apply one state-machine event (leave, suspend, reinstate, remove) to a membership."""
    if event is not MembershipEvent.LEAVE and actor.role is not Role.OPERATOR:
        raise Forbidden("forbidden", f"only an operator may {event}", "event")

    once = Once(
        actor.account_id,
        idempotency_key,
        f"membership:{membership_id}:{event}",
        {"reason": reason},
        MembershipView,
    )
    with ctx.unit_of_work(once) as uow:
        now = ctx.clock.now()
        membership, person, plan = _load_visible(uow.session, actor, membership_id)
        rules = rules_of(uow.session, plan.id, membership.plan_version)
        today = local_date(now, rules.zone)
        dates = CoverageDates(
            membership.joined_on,
            membership.waiting_ends_on,
            membership.covered_from_on,
            membership.ages_out_on,
        )
        current = state_on(dates, MembershipState(membership.state), today)
        if event in OWN_USE_CASE_EVENTS:  # they come with a claim or a move: never alone
            raise DomainError(
                "invalid_transition",
                f"a membership cannot {event.replace('_', ' ')} by itself",
                "event",
                details={"state": str(current)},
            )
        new_state = transition(current, event)
        membership.state = new_state
        if new_state in (MembershipState.LEFT, MembershipState.ENDED):
            membership.ended_at = now
            membership.end_reason = END_REASONS[event]
        audit.record(
            uow.session,
            at=now,
            actor_account_id=actor.account_id,
            action=f"membership_{event}",
            subject_type="membership",
            subject_id=membership.id,
            from_state=str(current),
            to_state=str(new_state),
            reason=reason,
        )
        queue_membership_event(
            uow.session,
            at=now,
            plan_ref=plan.code,
            membership_id=membership.id,
            event=event,
            state=new_state,
            occurred_at=now,
        )
        uow.commit(_view(membership, person, plan.code, today))
    return uow.result


@dataclass(frozen=True, slots=True)
class AdvanceResult:
    plan_code: str
    on: date
    now_covered: int
    aged_out: int
    #: Of those reaching the exit age, moved into another plan (issue 19; not in `aged_out`).
    moved: int = 0


def advance_memberships(ctx: ServiceContext, plan_code: str) -> AdvanceResult:
    """The daily job: waiting periods that are over become covered; birthdays at the exit age end.

    Set-based: two UPDATEs, one INSERT … SELECT of audit rows and the changes' membership_event
    leaves (issue 14; on PostgreSQL written by the UPDATEs' own statements), whatever the member
    count.
    Coverage never depends on this job having run (state_on() derives it from the dates), so a
    missed day changes nothing but the stored state column.
    """
    uow: UnitOfWork[AdvanceResult] = ctx.unit_of_work()
    with uow:
        session = uow.session
        now = ctx.clock.now()
        plan = plan_by_code(session, plan_code)
        zone = current_rules(session, plan).zone
        today = local_date(now, zone)
        # Opted-in age-out moves first (issue 19): those memberships end as `move_out`.
        moved = move_ageing_out(session, plan, today, now)
        ageing_out = (
            (Membership.plan_id == plan.id)
            & Membership.state.in_(_ACTIVE)
            & (Membership.ages_out_on <= today)
        )
        session.execute(
            insert(AuditEvent).from_select(
                [
                    "occurred_at",
                    "actor_account_id",
                    "action",
                    "subject_type",
                    "subject_id",
                    "details",
                ],
                select(
                    literal(now, AuditEvent.occurred_at.type),
                    literal(None).cast(Account.id.type),
                    literal("membership_age_out"),
                    literal("membership"),
                    Membership.id,
                    literal({"from_state": "active", "to_state": "ended"}, AuditEvent.details.type),
                ).where(ageing_out),
            )
        )
        # The UPDATEs, with their leaves unless a benchmark measures the job without (issue 14).
        if os.environ.get(NO_LEAVES_ENV) == "1":
            aged_out_result = session.execute(
                update(Membership)
                .where(ageing_out)
                .values(state=MembershipState.ENDED, end_reason="aged_out", ended_at=now)
                .execution_options(synchronize_session=False)
            )
            now_covered_result = session.execute(
                update(Membership)
                .where(
                    Membership.plan_id == plan.id,
                    Membership.state == MembershipState.WAITING,
                    Membership.covered_from_on <= today,
                )
                .values(state=MembershipState.COVERED)
                .execution_options(synchronize_session=False)
            )
            aged_out = int(getattr(aged_out_result, "rowcount", 0))
            now_covered = int(getattr(now_covered_result, "rowcount", 0))
        else:
            aged_out, now_covered = advance_with_leaves(
                session, plan_id=plan.id, plan_ref=plan.code, today=today, zone=zone, now=now
            )
        audit.record(
            session,
            at=now,
            actor_account_id=None,
            action="memberships_advanced",
            subject_type="plan",
            subject_id=plan.id,
            on=today.isoformat(),
            now_covered=now_covered,
            aged_out=aged_out,
            moved=moved,
        )
        uow.commit(AdvanceResult(plan.code, today, now_covered, aged_out, moved))
    return uow.result


@dataclass(frozen=True, slots=True)
class MemberRow:
    membership_id: int
    name_masked: str
    relation: str
    sex: str
    province_code: str
    birth_year: int
    state: str
    joined_on: date


@dataclass(frozen=True, slots=True)
class MemberPage:
    items: list[MemberRow]
    total: int
    next_after_id: int | None


def list_plan_members(
    ctx: ServiceContext,
    actor: Actor,
    plan_code: str,
    *,
    after_id: int = 0,
    limit: int = 50,
    state: MembershipState | None = None,
) -> MemberPage:
    """Operators page through a plan's members by keyset (fast at any depth), masked."""
    if actor.role not in (Role.OPERATOR, Role.AUDITOR, Role.REVIEWER):
        raise Forbidden(
            "forbidden", "only staff may list members", "role", details={"variant": "staff"}
        )
    limit = max(1, min(limit, 500))
    with ctx.reading() as session:
        plan = plan_by_code(session, plan_code)
        where = [Membership.plan_id == plan.id]
        if state is not None:
            where.append(Membership.state == state)
        total = session.scalar(select(func.count()).select_from(Membership).where(*where)) or 0
        rows = session.execute(
            select(
                Membership.id,
                Person.name_masked,
                Person.relation,
                Person.sex,
                Person.province_code,
                Person.birth_on,
                Membership.state,
                Membership.joined_on,
            )
            .join(Person, Person.id == Membership.person_id)
            .where(*where, Membership.id > after_id)
            .order_by(Membership.id)
            .limit(limit)
        ).all()
        items = [MemberRow(r[0], r[1], r[2], r[3], r[4], r[5].year, r[6], r[7]) for r in rows]
        return MemberPage(
            items=items,
            total=total,
            next_after_id=items[-1].membership_id if len(items) == limit else None,
        )
